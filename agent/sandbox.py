"""Runs the commands the model chooses, inside the workspace, with a timeout and an output cap."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

DEFAULT_TIMEOUT_SECONDS = 60.0
DEFAULT_OUTPUT_LIMIT_BYTES = 16_000


@dataclass
class CommandResult:
    """What a command did: exit code (None when it was killed), its output and the limit it hit, if any."""

    command: str
    exit_code: int | None
    output: str
    seconds: float
    limit: str = ""


class Sandbox:
    """Runs shell commands in the workspace folder, each in its own process group.

    This backend isolates nothing beyond the working folder: it is what `--sandbox none` selects.
    """

    name = "none"

    def __init__(self, root: Path, timeout: float = DEFAULT_TIMEOUT_SECONDS, output_limit: int = DEFAULT_OUTPUT_LIMIT_BYTES):
        self.root = Path(root)
        self.timeout = timeout
        self.output_limit = output_limit

    def run(self, command: str, timeout: float | None = None) -> CommandResult:
        limit_seconds = timeout or self.timeout
        started = time.monotonic()
        process = subprocess.Popen(
            ["/bin/sh", "-c", command],
            cwd=self.root,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        limit = ""
        try:
            raw, _ = process.communicate(timeout=limit_seconds)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            raw, _ = process.communicate()
            limit = "timeout"
        output = raw.decode("utf-8", errors="replace")
        if len(output) > self.output_limit:
            half = self.output_limit // 2
            output = f"{output[:half]}\n[... {len(output) - 2 * half} characters cut ...]\n{output[-half:]}"
        exit_code = None if limit else process.returncode
        return CommandResult(command, exit_code, output, time.monotonic() - started, limit)

    def close(self) -> None:
        """Stop whatever this sandbox still runs."""


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
