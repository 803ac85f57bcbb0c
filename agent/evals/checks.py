"""Run a task's checks against a workspace and report each one, with the first failure's short message.

NOTE: checks run the agent's code as this user, outside the sandbox that confines the agent's own
commands. Run evals of untrusted models inside a container.
"""

from __future__ import annotations

import ast
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from agent.evals.command_check import run_command_check
from agent.evals.page import run_page_check
from agent.evals.pytest_check import run_pytest_check
from agent.evals.tasks import Check, CheckFailure, PageCheck, PytestCheck, Task
from agent.verify import mentions, workspace_files

logger = logging.getLogger(__name__)

# The message fed back to the model is one failure, cut to this many characters, never the whole output.
MAX_MESSAGE_CHARS = 600

# Each runner returns None when the check passed, or a short message that states what is wrong
# (a CheckFailure when it can also tell how much of the check passed).
CheckRunner = Callable[[Any, Path], "CheckFailure | str | None"]
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
    # The share of the check's own parts that passed: 1.0 when it passed, 0.0 when it cannot tell.
    progress: float = 0.0
    # The workspace files the check runs or reads, so a failure can be traced to the file to fix.
    files: list[str] = field(default_factory=list)


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
    outcome = _RUNNERS[check.kind](check, workspace)
    seconds = time.monotonic() - started
    files = check_files(check, workspace)
    if outcome is None:
        logger.info("check %s passed in %.1f s", check.name, seconds)
        return CheckResult(check.name, check.kind, True, "", seconds, 1.0, files)

    failure = outcome if isinstance(outcome, CheckFailure) else CheckFailure(outcome)
    logger.info("check %s failed in %.1f s: %s", check.name, seconds, failure.message)
    return CheckResult(check.name, check.kind, False, shorten(failure.message), seconds, failure.progress, files)


def check_files(check: Check, workspace: Path) -> list[str]:
    """Return the workspace files a check is about: its page, or the files its test or command names.

    A file counts when the check's text spells its path, or, for a pytest check, imports its module.
    """
    if isinstance(check, PageCheck):
        return [check.page]
    modules: set[str] = set()
    if isinstance(check, PytestCheck):
        try:
            text = check.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return []
        modules = _imported_modules(text)
    else:
        text = check.command
    found = []
    for path in workspace_files(workspace):
        relative = path.relative_to(workspace)
        module = ".".join(relative.with_suffix("").parts).removesuffix(".__init__")
        if mentions(text, relative.as_posix()) or (relative.suffix == ".py" and module in modules):
            found.append(relative.as_posix())
    return found


def _imported_modules(source: str) -> set[str]:
    """Return the modules a Python file imports: `import a.b` gives a.b, `from a import b` gives a and a.b."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            modules.add(node.module)
            modules.update(f"{node.module}.{alias.name}" for alias in node.names)
    return modules


def shorten(message: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    message = message.strip()
    if len(message) <= limit:
        return message
    return message[: limit - 15].rstrip() + " [... cut ...]"
