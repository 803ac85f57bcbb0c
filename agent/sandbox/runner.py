"""Running one command: start it, collect its output under the limits, stop it and everything it started."""

from __future__ import annotations

import itertools
import logging
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
import weakref
from dataclasses import dataclass, field, replace
from pathlib import Path

from agent.sandbox import limits as limit_kinds
from agent.sandbox.environment import command_environment
from agent.sandbox.limits import CommandLimits, detect_limit, explain, prlimit_argv
from agent.sandbox.output import OutputCollector, clean_output, cut_middle
from agent.sandbox.secrets import mask_secrets

logger = logging.getLogger(__name__)

AGENT_DIR = ".gemma-agent"
LOG_DIR = f"{AGENT_DIR}/logs"
READ_CHUNK_BYTES = 65536
POLL_SECONDS = 0.5
# How long to wait for the pipe to close once a stopped command's processes have been killed.
DRAIN_SECONDS = 2.0


@dataclass
class CommandResult:
    """What a command did: exit code (None when it was stopped or still runs), its output and the limit it hit.

    `output` is cleaned, masked and cut for the model. When it was cut, `log_path` (relative to the workspace)
    names the file with the whole output. `background_id` is set for a process started in background mode.
    """

    command: str
    exit_code: int | None
    output: str
    seconds: float
    limit: str = ""
    explanation: str = ""
    log_path: str = ""
    total_bytes: int = 0
    background_id: int | None = None


@dataclass
class BackgroundProcess:
    """A long-running command started in background mode; its output goes to `log_path`."""

    id: int
    command: str
    process: subprocess.Popen
    log_path: Path
    started: float = field(default_factory=time.monotonic)


class Sandbox:
    """Runs shell commands in the workspace folder with limits, an allow-listed environment and masked output.

    This backend isolates nothing beyond that: the command can read and write the whole file system and
    use the network, and a process that starts its own session escapes the kill. It is what
    `sandbox = "none"` selects; BwrapSandbox adds the isolation.
    """

    name = "none"

    def __init__(
        self,
        root: Path,
        timeout: float | None = None,
        output_limit: int | None = None,
        *,
        limits: CommandLimits | None = None,
        allow_network: bool = True,
    ):
        self.root = Path(root).expanduser().resolve()
        self.limits = _override(limits or CommandLimits(), timeout, output_limit)
        self.allow_network = allow_network
        self._background: dict[int, BackgroundProcess] = {}
        self._ids = itertools.count(1)
        self._log_ids = itertools.count(1)
        self._home: Path | None = None

    def run(self, command: str, timeout: float | None = None) -> CommandResult:
        """Run `command` to its end or until a limit stops it, and return its cleaned output."""
        seconds_limit = self.limits.timeout_for(timeout)
        started = time.monotonic()
        collector = OutputCollector(self.limits.output_limit, self.limits.log_limit_bytes, self._log_path("command"))
        process = self._popen(command, subprocess.PIPE)
        try:
            limit = _collect(process, collector, started + seconds_limit)
        finally:
            if process.poll() is None:
                self._kill(process)
                _drain(process, collector)
            process.wait()
            process.stdout.close()
            collector.close()
        return self._result(command, process, collector, limit, time.monotonic() - started)

    def start(self, command: str) -> CommandResult:
        """Start `command` in background mode and return its first output after a short wait."""
        background_id = next(self._ids)
        log_path = self._log_path(f"background-{background_id}")
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("wb") as log:
            process = self._popen(command, log)
        self._background[background_id] = BackgroundProcess(background_id, command, process, log_path)
        try:
            exit_code = _exit_code(process.wait(timeout=self.limits.background_wait))
        except subprocess.TimeoutExpired:
            exit_code = None
        return self._background_result(background_id, exit_code)

    def background(self) -> list[BackgroundProcess]:
        """Return the background processes still running."""
        return [job for job in self._background.values() if job.process.poll() is None]

    def close(self) -> None:
        """Stop every background process and remove the private home folder."""
        for job in self._background.values():
            if job.process.poll() is None:
                self._kill(job.process)
            job.process.wait()
        self._background.clear()
        if self._home is not None:
            shutil.rmtree(self._home, ignore_errors=True)
            self._home = None

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # What a backend changes: the command line that wraps the shell, and how the process tree is stopped.

    def wrap(self, shell_argv: list[str]) -> list[str]:
        """Return the command line that runs `shell_argv`; the plain backend only adds the limits."""
        if shutil.which("prlimit") is None:
            return shell_argv
        # RLIMIT_NPROC is left out: outside a user namespace it counts every process of the user.
        return prlimit_argv(self.limits, with_processes=False) + shell_argv

    def _kill(self, process: subprocess.Popen) -> None:
        _kill_group(process.pid)

    # Shared steps.

    def home(self) -> Path:
        """Return the private HOME of this sandbox's commands, created on first use and kept until close."""
        if self._home is None:
            self._home = Path(tempfile.mkdtemp(prefix="gemma-agent-home-"))
            # Removes the folder at exit too when a caller never calls close().
            weakref.finalize(self, shutil.rmtree, self._home, ignore_errors=True)
        return self._home

    def _popen(self, command: str, stdout) -> subprocess.Popen:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / AGENT_DIR).mkdir(exist_ok=True)
        argv = self.wrap([_shell(), "-c", command])
        logger.debug("running %s", argv)
        return subprocess.Popen(
            argv,
            cwd=self.root,
            env=command_environment(self.home(), self.root),
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def _log_path(self, kind: str) -> Path:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        return self.root / LOG_DIR / f"{kind}-{stamp}-{os.getpid()}-{next(self._log_ids)}.log"

    def _result(self, command, process, collector, limit, seconds) -> CommandResult:
        text = mask_secrets(clean_output(collector.raw()))
        exit_code = None if limit else _exit_code(process.returncode)
        found = detect_limit(exit_code, text)
        # A command that keeps retrying fork() runs into the timeout, but the process limit is the cause.
        if not limit or found == limit_kinds.PROCESSES:
            limit = found or limit
        log_path = collector.log_path.relative_to(self.root).as_posix() if collector.logged else ""
        output = cut_middle(text, self.limits.output_limit, collector.total, log_path, gap=collector.has_gap)
        explanation = explain(limit, self.limits, round(seconds, 1) if limit == limit_kinds.TIMEOUT else seconds)
        return CommandResult(command, exit_code, output, seconds, limit, explanation, log_path, collector.total)

    def _background_result(self, background_id: int, exit_code: int | None) -> CommandResult:
        job = self._background[background_id]
        raw = job.log_path.read_bytes()[: 2 * self.limits.output_limit]
        text = mask_secrets(clean_output(raw))
        log_path = job.log_path.relative_to(self.root).as_posix()
        output = cut_middle(text, self.limits.output_limit, job.log_path.stat().st_size, log_path)
        seconds = time.monotonic() - job.started
        return CommandResult(job.command, exit_code, output, seconds, log_path=log_path, background_id=background_id)


def _override(limits: CommandLimits, timeout: float | None, output_limit: int | None) -> CommandLimits:
    if timeout is not None:
        limits = replace(limits, timeout=timeout, max_timeout=max(limits.max_timeout, timeout))
    if output_limit is not None:
        limits = replace(limits, output_limit=output_limit)
    return limits


def _collect(process: subprocess.Popen, collector: OutputCollector, deadline: float) -> str:
    """Read the output until the command ends; return the limit that stopped it, or ""."""
    fd = process.stdout.fileno()
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return limit_kinds.TIMEOUT
        ready, _, _ = select.select([fd], [], [], min(remaining, POLL_SECONDS))
        if not ready:
            continue
        chunk = os.read(fd, READ_CHUNK_BYTES)
        if not chunk:
            break
        collector.add(chunk)
        if collector.over_log_limit:
            return limit_kinds.OUTPUT
    # The pipe closed; a command that closed its output early may still be running.
    if not _wait_for_exit(process, max(deadline - time.monotonic(), 0)):
        return limit_kinds.TIMEOUT
    return ""


def _wait_for_exit(process: subprocess.Popen, seconds: float) -> bool:
    """Wait up to `seconds` for the process to exit; return whether it did.

    A pidfd wakes up the moment the process exits, where Popen.wait(timeout) polls with growing sleeps
    that added several milliseconds to every command.
    """
    try:
        pidfd = os.pidfd_open(process.pid)
    except (AttributeError, OSError):
        pidfd = None
    if pidfd is not None:
        try:
            select.select([pidfd], [], [], seconds)
        finally:
            os.close(pidfd)
    try:
        process.wait(timeout=0 if pidfd is not None else seconds)
    except subprocess.TimeoutExpired:
        return False
    return True


def _drain(process: subprocess.Popen, collector: OutputCollector) -> None:
    """Read what the killed processes left in the pipe, until it closes or DRAIN_SECONDS pass."""
    fd = process.stdout.fileno()
    deadline = time.monotonic() + DRAIN_SECONDS
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], POLL_SECONDS)
        if ready and not os.read(fd, READ_CHUNK_BYTES):
            return


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _exit_code(returncode: int | None) -> int | None:
    """Return the exit status as a shell reports it: 128 + N for a process killed by signal N."""
    if returncode is not None and returncode < 0:
        return limit_kinds.SIGNAL_EXIT_BASE - returncode
    return returncode


def _shell() -> str:
    return shutil.which("bash") or "/bin/sh"
