"""The Blackjack task's checks pass the reference solution and fail every broken variant."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from agent.evals.checks import run_check, run_checks
from agent.evals.page import find_chromium
from agent.evals.tasks import load_task

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "blackjack"
TASK = load_task(EXAMPLE / "task.toml")
CHECKS = {check.name: check for check in TASK.checks}
TOOLS = {"read_file", "write_file", "edit_file", "list_files", "search_files", "run_command", "finish"}

# Variant folder -> the check that must fail and a piece of its message.
LOGIC_VARIANTS = {
    "aces_always_11": "returned 22, expected 12",
    "aces_always_1": "returned 11, expected 21",
    "faces_count_eleven": "returned 11, expected 10",
    "duplicate_cards": "repeats",
}
PAGE_VARIANTS = {
    "hit_enabled_after_bust": "#hit is still enabled after the player went bust",
    "javascript_error_on_load": "JavaScript error on the page: newGmae is not defined",
    "page_aces_always_11": "#player-score shows",
}


def make_workspace(tmp_path: Path, variant: str | None = None) -> Path:
    """Copy the reference solution, then the variant's files, which replace the reference's."""
    workspace = tmp_path / "workspace"
    shutil.copytree(EXAMPLE / "reference", workspace)
    if variant:
        shutil.copytree(EXAMPLE / "broken" / variant, workspace, dirs_exist_ok=True)
    return workspace


@pytest.fixture(scope="module")
def browser_available() -> None:
    pytest.importorskip("playwright.sync_api")
    try:
        find_chromium()
    except Exception as error:  # UsageError: no Chromium on this machine.
        pytest.skip(str(error))


def test_every_broken_variant_is_tested():
    variants = {path.name for path in (EXAMPLE / "broken").iterdir() if path.is_dir()}
    assert variants == set(LOGIC_VARIANTS) | set(PAGE_VARIANTS)


def test_reference_passes_logic_check(tmp_path):
    result = run_check(CHECKS["logic"], make_workspace(tmp_path))
    assert result.passed, result.message


@pytest.mark.parametrize(("variant", "expected"), sorted(LOGIC_VARIANTS.items()))
def test_logic_variant_fails_task(tmp_path, variant, expected):
    report = run_checks(TASK, make_workspace(tmp_path, variant), stop_at_first_failure=True)
    assert not report.passed
    assert report.first_failure.name == "logic"
    assert expected in report.first_failure.message
    assert len(report.feedback()) < 400


def test_missing_module_fails_logic_check(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_check(CHECKS["logic"], empty)
    assert not result.passed
    assert "No module named 'blackjack'" in result.message


@pytest.mark.browser
def test_reference_passes_every_check(tmp_path, browser_available):
    report = run_checks(TASK, make_workspace(tmp_path))
    assert report.passed, report.feedback()
    assert [result.name for result in report.results] == ["logic", "page"]


@pytest.mark.browser
@pytest.mark.parametrize(("variant", "expected"), sorted(PAGE_VARIANTS.items()))
def test_page_variant_fails_page_check(tmp_path, browser_available, variant, expected):
    report = run_checks(TASK, make_workspace(tmp_path, variant))
    assert not report.passed
    assert report.first_failure.name == "page"
    assert expected in report.first_failure.message


@pytest.mark.browser
def test_missing_page_fails_page_check(tmp_path, browser_available):
    workspace = make_workspace(tmp_path)
    (workspace / "index.html").unlink()
    result = run_check(CHECKS["page"], workspace)
    assert not result.passed
    assert result.message == "index.html was not found in the workspace."


@pytest.mark.browser
def test_replay_rebuilds_game_through_agent(tmp_path, browser_available):
    from agent.config import Settings
    from agent.evals.runner import evaluate

    settings = Settings(engine="scripted", script=str(EXAMPLE / "replay.jsonl"))
    report = evaluate(EXAMPLE, settings, workdir=tmp_path / "runs")
    attempt = report.tasks[0].attempts[0]
    assert report.exit_code == 0, report.tasks[0].first_failure
    assert attempt.metrics.status == "finished"
    # The loop checks the files as soon as both exist, so the run ends before the replay's last calls.
    assert attempt.metrics.tool_calls == 2
    workspace = Path(attempt.workspace)
    assert (workspace / "index.html").read_text() == (EXAMPLE / "reference" / "index.html").read_text()


def read_replay() -> list[dict]:
    lines = (EXAMPLE / "replay.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def test_replay_starts_with_numbered_plan():
    first = read_replay()[0]
    assert set(first) == {"text"}
    assert first["text"].startswith("1. ")


def test_replay_calls_known_tools_and_finishes():
    replies = read_replay()
    calls = [call for reply in replies[1:] for call in reply["tool_calls"]]
    assert {call["name"] for call in calls} <= TOOLS
    assert calls[-1]["name"] == "finish"
    assert any(call["name"] == "run_command" and "python" in call["arguments"]["command"] for call in calls)


def test_replay_writes_reference_files():
    written = {
        call["arguments"]["path"]: call["arguments"]["content"]
        for reply in read_replay()[1:]
        for call in reply["tool_calls"]
        if call["name"] == "write_file"
    }
    assert set(written) == {"blackjack.py", "index.html"}
    for path, content in written.items():
        assert content == (EXAMPLE / "reference" / path).read_text(encoding="utf-8"), f"rerun make_replay.py for {path}"
