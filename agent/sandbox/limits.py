"""Per-command resource limits: how they are applied, how a hit is recognised, and the explanation for the model."""

from __future__ import annotations

import re
import signal
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agent.config import Settings

MB = 1024 * 1024

TIMEOUT = "timeout"
OUTPUT = "output"
CPU = "cpu"
MEMORY = "memory"
PROCESSES = "processes"
FILE_SIZE = "file_size"

# A shell reports a child killed by signal N as exit status 128 + N.
SIGNAL_EXIT_BASE = 128

# Messages that shells and runtimes print when a limit stops a process.
LIMIT_MESSAGES = [
    (FILE_SIZE, re.compile(r"File size limit exceeded|File too large", re.IGNORECASE)),
    (CPU, re.compile(r"CPU time limit exceeded", re.IGNORECASE)),
    (PROCESSES, re.compile(r"fork: (?:retry: )?Resource temporarily unavailable|Cannot fork|BlockingIOError: \[Errno 11")),
    (MEMORY, re.compile(r"MemoryError|Cannot allocate memory|std::bad_alloc|out of memory", re.IGNORECASE)),
]


@dataclass(frozen=True)
class CommandLimits:
    """The limits of one command. Sizes are in bytes, times in seconds."""

    timeout: float = 60.0
    max_timeout: float = 600.0
    cpu_seconds: int = 300
    memory_bytes: int = 4096 * MB
    max_processes: int = 256
    max_file_bytes: int = 1024 * MB
    output_limit: int = 16_000
    log_limit_bytes: int = 64 * MB
    background_wait: float = 3.0

    @classmethod
    def from_settings(cls, settings: Settings) -> CommandLimits:
        return cls(
            timeout=settings.command_timeout,
            max_timeout=max(settings.command_max_timeout, settings.command_timeout),
            cpu_seconds=settings.command_cpu_seconds,
            memory_bytes=settings.command_memory_mb * MB,
            max_processes=settings.command_max_processes,
            max_file_bytes=settings.command_max_file_mb * MB,
            output_limit=settings.output_limit,
            log_limit_bytes=settings.command_log_limit_mb * MB,
            background_wait=settings.background_wait,
        )

    def timeout_for(self, requested: float | None) -> float:
        """Return the wall-clock limit for one command: the request, capped by max_timeout."""
        if requested is None or requested <= 0:
            return self.timeout
        return min(float(requested), self.max_timeout)


def prlimit_argv(limits: CommandLimits, with_processes: bool) -> list[str]:
    """Return the `prlimit` prefix that applies the per-process limits to a command and its children.

    RLIMIT_DATA bounds memory rather than RLIMIT_AS, because runtimes such as V8 and Go reserve large
    address ranges they never fill, and RLIMIT_AS would stop them at start-up.
    The hard CPU limit sits one second above the soft one, so SIGXCPU arrives before SIGKILL.
    """
    argv = [
        "prlimit",
        f"--cpu={limits.cpu_seconds}:{limits.cpu_seconds + 1}",
        f"--data={limits.memory_bytes}",
        f"--fsize={limits.max_file_bytes}",
        "--core=0",
    ]
    if with_processes:
        argv.append(f"--nproc={limits.max_processes}")
    return argv + ["--"]


def detect_limit(exit_code: int | None, text: str) -> str:
    """Return the limit a finished command ran into, judged by its exit status and its messages, or ""."""
    if exit_code == SIGNAL_EXIT_BASE + signal.SIGXCPU:
        return CPU
    if exit_code == SIGNAL_EXIT_BASE + signal.SIGXFSZ:
        return FILE_SIZE
    for limit, pattern in LIMIT_MESSAGES:
        # Memory errors are also ordinary program messages, so they count only when the command failed.
        if (limit != MEMORY or exit_code != 0) and pattern.search(text):
            return limit
    return ""


def explain(limit: str, limits: CommandLimits, seconds: float) -> str:
    """Return a sentence for the model: which limit stopped the command and what to do instead."""
    if limit == TIMEOUT:
        longer = f" or pass a larger timeout (at most {limits.max_timeout:g})" if seconds < limits.max_timeout else ""
        return (
            f"The command was stopped after {seconds:g} seconds (time limit). To run a server or a watcher, "
            f"call run_command with background: true. For a slow build or test suite, run a smaller part{longer}."
        )
    if limit == OUTPUT:
        return (
            f"The command was stopped after writing {limits.log_limit_bytes // MB} MB of output. Narrow it: "
            "filter with grep, limit with head or tail, or redirect the output to a file and search that."
        )
    if limit == CPU:
        return (
            f"A process used more than {limits.cpu_seconds} CPU seconds and was stopped. Look for an endless loop, "
            "or run a smaller part of the job."
        )
    if limit == MEMORY:
        return (
            f"A process ran out of memory (limit {limits.memory_bytes // MB} MB per process). Process the data in "
            "smaller parts or use less memory."
        )
    if limit == PROCESSES:
        return (
            f"The command tried to run more than {limits.max_processes} processes at once, so starting new ones "
            "failed. Start fewer processes (lower the parallelism, for example make -j2)."
        )
    if limit == FILE_SIZE:
        return (
            f"A process tried to write a file larger than {limits.max_file_bytes // MB} MB and was stopped. "
            "Write smaller files; delete the partial file if it is not needed."
        )
    return ""
