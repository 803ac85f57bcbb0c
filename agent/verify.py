"""Checking the work before a run may finish: the verifier protocol and the default one, the workspace's own tests."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agent.tool import ToolContext

logger = logging.getLogger(__name__)

TEST_TIMEOUT_SECONDS = 300.0
MAX_FAILURE_CHARS = 2000
# -x stops at the first failure, which is all the model is shown; -rfE adds the one-line summary of it.
PYTEST_COMMAND = "python3 -m pytest -x -q --tb=short -rfE -p no:cacheprovider"
PYTEST_NO_TESTS_COLLECTED = 5
SKIPPED_FOLDERS = frozenset({"node_modules", "__pycache__", "venv", "site-packages"})
_SECTION_HEADER = re.compile(r"^_{3,} .+ _{3,}$")
_SECTION_END = re.compile(r"^(_{3,} .+ _{3,}|={3,}.*)$")


@dataclass
class CheckOutcome:
    """One check of a verification: its message for the model when it failed, the workspace files it
    is about (most likely culprit first), and how much of it passed (0 to 1, None when it cannot tell)."""

    name: str
    passed: bool
    message: str = ""
    files: list[str] = field(default_factory=list)
    progress: float | None = None


@dataclass
class Verification:
    """The outcome of checking the work: `failure` is the first failing check's short message.

    `outcomes` lists each check the verifier ran. `checked` is False when there was nothing to check.
    `conclusive` is True when passing means the task is done (a task's acceptance checks), not only
    that no test fails.
    """

    passed: bool
    failure: str = ""
    details: dict = field(default_factory=dict)
    outcomes: list[CheckOutcome] = field(default_factory=list)
    checked: bool = True
    conclusive: bool = True


Verifier = Callable[[], Verification]


def default_verifier(context: ToolContext) -> Verifier:
    """Return a verifier that runs the workspace's Python tests with pytest; with no test files it passes."""

    def verify() -> Verification:
        root = context.workspace.root
        tests = find_python_tests(root)
        if not tests:
            return Verification(True, details={"tests": 0}, checked=False, conclusive=False)
        result = context.sandbox.run(PYTEST_COMMAND, timeout=TEST_TIMEOUT_SECONDS)
        verification = judge_pytest(result.exit_code, result.output, len(tests))
        test_names = {path.relative_to(root).as_posix() for path in tests}
        files = [name for name in files_in_text(verification.failure, root) if name not in test_names]
        verification.outcomes = [CheckOutcome("tests", verification.passed, verification.failure, files)]
        # The model's own tests passing does not show the task is done, only that nothing it tested fails.
        verification.conclusive = False
        return verification

    return verify


def mentions(text: str, name: str) -> bool:
    """Tell whether `text` names the file `name` as a whole word ("app.js" is not in "app.json")."""
    return _mention(name).search(text) is not None


def _mention(name: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![\w./-]){re.escape(name)}(?![\w-]|\.\w)")


def workspace_files(root: Path) -> list[Path]:
    """Return the workspace's files, sorted, skipping hidden and dependency folders."""
    found = []
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = sorted(name for name in subfolders if not name.startswith(".") and name not in SKIPPED_FOLDERS)
        found.extend(Path(folder, name) for name in sorted(files))
    return found


def files_in_text(text: str, root: Path) -> list[str]:
    """Return the workspace files a text names by relative path, in the order they first appear."""
    found: list[tuple[int, str]] = []
    for path in workspace_files(root):
        relative = path.relative_to(root).as_posix()
        match = _mention(relative).search(text)
        if match:
            found.append((match.start(), relative))
    return [name for _, name in sorted(found)]


def find_python_tests(root: Path) -> list[Path]:
    """Return the files pytest collects by default (test_*.py, *_test.py), skipping hidden and dependency folders."""
    return [
        path for path in workspace_files(root)
        if path.suffix == ".py" and (path.name.startswith("test_") or path.name.endswith("_test.py"))
    ]


def judge_pytest(exit_code: int | None, output: str, test_files: int) -> Verification:
    """Turn a pytest run into a verification: passed, or the first failure in short."""
    details = {"command": PYTEST_COMMAND, "exit_code": exit_code, "tests": test_files}
    if exit_code in (0, PYTEST_NO_TESTS_COLLECTED):
        return Verification(True, details=details)
    if "No module named pytest" in output:
        # The tests cannot be run here, so they cannot hold the run back either.
        logger.warning("pytest is not installed; the workspace's tests were not run")
        return Verification(True, details={**details, "skipped": "pytest is not installed"})
    if exit_code is None:
        return Verification(False, f"The tests did not finish within {TEST_TIMEOUT_SECONDS:.0f} s.", details)
    return Verification(False, "The tests fail (" + PYTEST_COMMAND + "):\n" + first_failure(output), details)


def first_failure(output: str) -> str:
    """Return the one-line summary and the traceback section of the first failing test, cut to a readable size."""
    lines = output.splitlines()
    summary = next((line for line in lines if line.startswith(("FAILED ", "ERROR "))), "")
    section: list[str] = []
    for line in lines:
        if section and _SECTION_END.match(line):
            break
        if section or _SECTION_HEADER.match(line):
            section.append(line)
    text = "\n".join([summary, *section]).strip() or output.strip()
    if len(text) <= MAX_FAILURE_CHARS:
        return text
    half = MAX_FAILURE_CHARS // 2
    return f"{text[:half]}\n[...]\n{text[-half:]}"
