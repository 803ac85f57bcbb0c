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
class Verification:
    """The outcome of checking the work: `failure` is the first failing check's short message."""

    passed: bool
    failure: str = ""
    details: dict = field(default_factory=dict)


Verifier = Callable[[], Verification]


def default_verifier(context: ToolContext) -> Verifier:
    """Return a verifier that runs the workspace's Python tests with pytest; with no test files it passes."""

    def verify() -> Verification:
        tests = find_python_tests(context.workspace.root)
        if not tests:
            return Verification(True, details={"tests": 0})
        result = context.sandbox.run(PYTEST_COMMAND, timeout=TEST_TIMEOUT_SECONDS)
        return judge_pytest(result.exit_code, result.output, len(tests))

    return verify


def find_python_tests(root: Path) -> list[Path]:
    """Return the files pytest collects by default (test_*.py, *_test.py), skipping hidden and dependency folders."""
    found = []
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = sorted(name for name in subfolders if not name.startswith(".") and name not in SKIPPED_FOLDERS)
        for name in sorted(files):
            if name.endswith(".py") and (name.startswith("test_") or name.endswith("_test.py")):
                found.append(Path(folder, name))
    return found


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
