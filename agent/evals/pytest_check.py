"""The `pytest` check: run a task's pytest file against the code in the workspace.

The file is copied to a temporary folder with an empty pytest configuration, so neither the
workspace's nor this repository's pytest settings and conftest files change how it runs. The
workspace is the working folder and first on the import path, so `import blackjack` finds the
agent's blackjack.py.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from agent.evals.process import run_process
from agent.evals.tasks import CheckFailure, PytestCheck

OUTPUT_TAIL_LINES = 5
# A failure names this many failing tests at most: the first in full, then the names of the others.
MAX_NAMED_FAILURES = 4


def run_pytest_check(check: PytestCheck, workspace: Path) -> CheckFailure | str | None:
    """Return None when every test passed, else the first failing test and its assertion message,
    with the share of tests that passed."""
    with tempfile.TemporaryDirectory(prefix="gemma-agent-check-") as folder:
        folder_path = Path(folder)
        test_file = folder_path / check.path.name
        shutil.copyfile(check.path, test_file)
        (folder_path / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
        junit = folder_path / "junit.xml"

        argv = [
            sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
            "-c", str(folder_path / "pytest.ini"), "--rootdir", folder,
            f"--junitxml={junit}", str(test_file),
        ]
        result = run_process(argv, workspace, check.timeout, env=_environment(workspace))
        if result.timed_out:
            return f"the tests in {check.path.name} did not finish within {check.timeout:g} seconds."
        if result.exit_code == 0:
            return None
        return _first_failure(junit) or _output_tail(result.output)


def _environment(workspace: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(workspace), env.get("PYTHONPATH", "")]))
    # Keep the workspace free of __pycache__ folders and the run free of unrelated pytest plugins.
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    return env


def _first_failure(junit: Path) -> CheckFailure | None:
    """Read the first failed or erroring test from pytest's JUnit XML report."""
    try:
        root = ElementTree.parse(junit).getroot()
    except (OSError, ElementTree.ParseError):
        return None
    cases = list(root.iter("testcase"))
    failed = [case for case in cases if case.find("failure") is not None or case.find("error") is not None]
    if not failed:
        return None

    case = failed[0]
    problem = case.find("failure") if case.find("failure") is not None else case.find("error")
    summary = f"{case.get('name')}: {_problem_line(problem)}"
    if len(failed) > 1:
        # The names of the other failing tests often show what the first failure hides, such as test_orders_ties_alphabetically.
        others = ", ".join(other.get("name") or "?" for other in failed[1:MAX_NAMED_FAILURES])
        more = ", ..." if len(failed) > MAX_NAMED_FAILURES else ""
        summary += f" ({len(failed)} of {len(cases)} tests failed; also {others}{more})"
    elif len(cases) > 1:
        summary += f" (1 of {len(cases)} tests failed)"
    return CheckFailure(summary, progress=(len(cases) - len(failed)) / len(cases))


def _problem_line(problem: ElementTree.Element) -> str:
    """Return the assertion message, or for a collection error the exception pytest printed."""
    message = (problem.get("message") or "").strip()
    if message and message != "collection failure":
        return message.splitlines()[0].removeprefix("AssertionError: ")
    lines = [line for line in (problem.text or "").splitlines() if line.startswith("E ")]
    if lines:
        return lines[-1][1:].strip()
    return message or "the test failed without a message"


def _output_tail(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    return "pytest failed: " + " | ".join(lines[-OUTPUT_TAIL_LINES:])
