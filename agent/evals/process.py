"""Run a check's process with a timeout, killing its whole process group when time runs out."""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

# Output kept from a check's process; what a check reports is shorter still.
MAX_OUTPUT_CHARS = 64_000


@dataclass
class ProcessResult:
    """Exit code (None when killed at the timeout) and the combined stdout and stderr."""

    exit_code: int | None
    output: str

    @property
    def timed_out(self) -> bool:
        return self.exit_code is None


def run_process(
    argv: list[str], cwd: Path, timeout: float, *, stdin: str = "", env: dict[str, str] | None = None
) -> ProcessResult:
    """Run `argv` in `cwd`, feeding `stdin`; kill the process group after `timeout` seconds."""
    process = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        raw, _ = process.communicate(stdin.encode("utf-8"), timeout=timeout)
        exit_code: int | None = process.returncode
    except subprocess.TimeoutExpired:
        _kill_group(process)
        raw, _ = process.communicate()
        exit_code = None

    output = raw.decode("utf-8", errors="replace")
    if len(output) > MAX_OUTPUT_CHARS:
        output = output[-MAX_OUTPUT_CHARS:]
    return ProcessResult(exit_code, output)


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
