"""The `command` check: run a shell command in the workspace and compare its exit code and output."""

from __future__ import annotations

from pathlib import Path

from agent.evals.process import run_process
from agent.evals.tasks import CommandCheck

# How much of the actual output a failure message quotes.
QUOTE_CHARS = 200


def run_command_check(check: CommandCheck, workspace: Path) -> str | None:
    """Return None when the command behaved as the check expects, else what differed."""
    result = run_process(["/bin/sh", "-c", check.command], workspace, check.timeout, stdin=check.stdin)
    if result.timed_out:
        return f"`{check.command}` did not finish within {check.timeout:g} seconds."

    output = _normalize(result.output)
    if result.exit_code != check.exit_code:
        return f"`{check.command}` exited with {result.exit_code}, expected {check.exit_code}. Output ends: {_quote_tail(output)}"
    if check.stdout is not None and output != _normalize(check.stdout):
        return f"`{check.command}` printed {_quote(output)}, expected {_quote(_normalize(check.stdout))}."
    for expected in check.stdout_contains:
        if expected not in output:
            return f"the output of `{check.command}` lacks {expected!r}. It printed {_quote(output)}."
    return None


def _normalize(text: str) -> str:
    """Drop trailing spaces on each line and trailing blank lines, which a reader of the output cannot see."""
    return "\n".join(line.rstrip() for line in text.splitlines()).rstrip("\n")


def _quote_tail(text: str) -> str:
    """Quote the end of the output, where a traceback names the exception."""
    if len(text) > QUOTE_CHARS:
        text = "..." + text[-QUOTE_CHARS:]
    return repr(text)


def _quote(text: str) -> str:
    if len(text) > QUOTE_CHARS:
        text = text[:QUOTE_CHARS] + "..."
    return repr(text)
