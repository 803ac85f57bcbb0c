"""`gemma-agent build` driven through typer's CliRunner with the scripted engine."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from agent.cli import app
from tests.conftest import call, write_script

runner = CliRunner()

PLAN = {"text": "1. Write the module\n2. Write its test\n3. Run the test\n4. Finish"}
TWO_FILES_AND_A_COMMAND = [
    PLAN,
    call("write_file", path="calc.py", content="def add(a, b):\n    return a + b\n"),
    call("write_file", path="test_calc.py", content="from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"),
    call("run_command", command="python -c 'from calc import add; print(add(2, 3))'"),
    call("finish", summary="Wrote calc.py with add() and a test."),
]


def build(tmp_path: Path, replies: list[dict], *extra: str):
    script = write_script(tmp_path / "script.jsonl", replies)
    workspace = tmp_path / "ws"
    args = ["build", "Write calc.py with add()", "--engine", "scripted", "--script", str(script), "--workspace", str(workspace), *extra]
    return runner.invoke(app, args), workspace


def json_events(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_scripted_build_writes_two_files_and_runs_command(tmp_path, git_home):
    result, workspace = build(tmp_path, TWO_FILES_AND_A_COMMAND, "--json")

    assert result.exit_code == 0, result.output
    assert (workspace / "calc.py").exists()
    assert (workspace / "test_calc.py").exists()
    events = json_events(result.output)
    command_result = next(e for e in events if e["event"] == "tool_result" and e["name"] == "run_command")
    assert command_result["ok"] and "5" in command_result["output"]
    summary = events[-1]
    assert summary["event"] == "run_end"
    assert summary["status"] == "finished"
    assert summary["files_written"] == ["calc.py", "test_calc.py"]
    assert Path(summary["trajectory"]).is_file()


def test_screen_shows_plan_calls_and_summary(tmp_path, git_home):
    result, _ = build(tmp_path, TWO_FILES_AND_A_COMMAND)

    assert result.exit_code == 0, result.output
    for expected in ("plan", "1. Write the module", "→ write_file", "path=\"calc.py\"", "summary", "finished", "tokens in", "trajectory"):
        assert expected in result.output


def test_trajectory_records_every_event(tmp_path, git_home):
    result, _ = build(tmp_path, TWO_FILES_AND_A_COMMAND, "--json")

    trajectory = Path(json_events(result.output)[-1]["trajectory"])
    kinds = [json.loads(line)["event"] for line in trajectory.read_text().splitlines()]
    assert kinds[0] == "run_start"
    assert kinds[-1] == "run_end"
    assert {"plan", "reply", "tool_call", "tool_result"} <= set(kinds)


def test_trajectory_replays_to_the_same_files(tmp_path, git_home):
    result, workspace = build(tmp_path, TWO_FILES_AND_A_COMMAND, "--json")
    trajectory = json_events(result.output)[-1]["trajectory"]

    replay_workspace = tmp_path / "replay"
    args = ["build", "Write calc.py with add()", "--engine", "scripted", "--script", trajectory, "--workspace", str(replay_workspace), "--json"]
    replay = runner.invoke(app, args)

    assert replay.exit_code == 0, replay.output
    assert (replay_workspace / "calc.py").read_text() == (workspace / "calc.py").read_text()


def test_step_limit_exits_one_with_summary(tmp_path, git_home):
    replies = [PLAN] + [call("list_files")] * 5
    result, _ = build(tmp_path, replies, "--max-steps", "3", "--json")

    assert result.exit_code == 1
    assert json_events(result.output)[-1]["status"] == "max_steps"


def test_script_running_out_exits_one(tmp_path, git_home):
    result, _ = build(tmp_path, [PLAN], "--json")

    assert result.exit_code == 1
    summary = json_events(result.output)[-1]
    assert summary["status"] == "script_exhausted"
    assert "no reply left" in summary["message"]


def test_empty_task_is_usage_error_and_writes_nothing(tmp_path):
    script = write_script(tmp_path / "s.jsonl", [PLAN])
    workspace = tmp_path / "ws"

    result = runner.invoke(app, ["build", "  ", "--engine", "scripted", "--script", str(script), "--workspace", str(workspace)])

    assert result.exit_code == 2
    assert "The task is empty" in result.output
    assert not workspace.exists()


def test_missing_model_file_is_usage_error_and_writes_nothing(tmp_path):
    workspace = tmp_path / "ws"

    result = runner.invoke(app, ["build", "Do it", "--model", str(tmp_path / "nope.gguf"), "--workspace", str(workspace)])

    assert result.exit_code == 2
    assert "nope.gguf" in result.output
    assert not workspace.exists()


def test_non_gguf_file_is_usage_error(tmp_path):
    fake = tmp_path / "model.gguf"
    fake.write_text("not a model")

    result = runner.invoke(app, ["build", "Do it", "--model", str(fake), "--workspace", str(tmp_path / "ws")])

    assert result.exit_code == 2
    assert "GGUF" in result.output


def test_bad_script_line_names_file_and_line(tmp_path):
    script = tmp_path / "s.jsonl"
    script.write_text('{"text": "plan"}\nnot json\n')

    result = runner.invoke(app, ["build", "Do it", "--engine", "scripted", "--script", str(script), "--workspace", str(tmp_path / "ws")])

    assert result.exit_code == 2
    assert "s.jsonl:2" in result.output


def test_unknown_engine_is_usage_error(tmp_path):
    result = runner.invoke(app, ["build", "Do it", "--engine", "magic", "--workspace", str(tmp_path / "ws")])

    assert result.exit_code == 2
    assert "command line: setting 'engine' cannot be 'magic'; allowed: one of llamacpp, openai, scripted." in result.output


def test_help_lists_exit_codes_without_heavy_imports():
    completed = subprocess.run([sys.executable, "-m", "agent", "--help"], capture_output=True, text=True, timeout=30)

    assert completed.returncode == 0
    assert "Exit codes" in completed.stdout
    # --help stays instant only while the CLI module imports neither llama_cpp nor playwright.
    modules = subprocess.run(
        [sys.executable, "-c", "import sys, agent.cli; print('llama_cpp' in sys.modules, 'playwright' in sys.modules)"],
        capture_output=True, text=True, timeout=30,
    )
    assert modules.stdout.strip() == "False False"


def test_json_mode_reports_usage_error_as_json(tmp_path):
    result = runner.invoke(app, ["build", "Do it", "--engine", "scripted", "--script", str(tmp_path / "nope.jsonl"), "--json"])

    assert result.exit_code == 2
    event = json_events(result.stdout)[-1]
    assert event["event"] == "error"
    assert event["exit_code"] == 2
    assert "Script file not found" in event["message"]
