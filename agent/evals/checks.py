"""Run a task's checks against a workspace and report each one, with the first failure's short message.

NOTE: checks run the agent's code as this user, outside the sandbox that confines the agent's own
commands. Run evals of untrusted models inside a container.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from agent.evals.command_check import run_command_check
from agent.evals.page import run_page_check
from agent.evals.pytest_check import run_pytest_check
from agent.evals.tasks import Check, Task

logger = logging.getLogger(__name__)

# The message fed back to the model is one failure, cut to this many characters, never the whole output.
MAX_MESSAGE_CHARS = 600

# Each runner returns None when the check passed, or a short message that states what is wrong.
CheckRunner = Callable[[Any, Path], "str | None"]
_RUNNERS: dict[str, CheckRunner] = {
    "pytest": run_pytest_check,
    "page": run_page_check,
    "command": run_command_check,
}


@dataclass
class CheckResult:
    """The outcome of one check. `message` is empty when it passed."""

    name: str
    kind: str
    passed: bool
    message: str
    seconds: float


@dataclass
class CheckReport:
    """The outcome of a task's checks, in the task file's order."""

    results: list[CheckResult]

    @property
    def passed(self) -> bool:
        return all(result.passed for result in self.results)

    @property
    def first_failure(self) -> CheckResult | None:
        return next((result for result in self.results if not result.passed), None)

    def feedback(self) -> str:
        """Return one line for the model: all passed, or the first failing check and what it found."""
        failure = self.first_failure
        if failure is None:
            return f"All {len(self.results)} checks passed."
        return f"Check {failure.name!r} failed: {failure.message}"

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "results": [asdict(result) for result in self.results]}


def run_checks(task: Task, workspace: Path | str, *, stop_at_first_failure: bool = False) -> CheckReport:
    """Run every check of `task` in `workspace` (or up to the first failure) and report each one."""
    results = []
    for check in task.checks:
        result = run_check(check, Path(workspace))
        results.append(result)
        if stop_at_first_failure and not result.passed:
            break
    return CheckReport(results)


def run_check(check: Check, workspace: Path) -> CheckResult:
    """Run one check; the model's mistakes become a failed result, our own failures raise."""
    started = time.monotonic()
    message = _RUNNERS[check.kind](check, workspace)
    seconds = time.monotonic() - started
    if message is None:
        logger.info("check %s passed in %.1f s", check.name, seconds)
        return CheckResult(check.name, check.kind, True, "", seconds)

    logger.info("check %s failed in %.1f s: %s", check.name, seconds, message)
    return CheckResult(check.name, check.kind, False, shorten(message), seconds)


def shorten(message: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    message = message.strip()
    if len(message) <= limit:
        return message
    return message[: limit - 15].rstrip() + " [... cut ...]"
