"""Ctrl-C during a run, and `build --resume` continuing a stopped run from its trajectory."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.chat.messages import Message, ToolCall
from agent.cli import app
from agent.config import Settings
from agent.engines.scripted import ScriptedEngine
from agent.errors import UsageError
from agent.resume import NOT_RUN_RESULT, load_resume, pair_tool_results
from agent.session import run_task
from agent.trajectory import read_events
from agent.workspace import Workspace
from tests.conftest import call, write_script

PLAN = {"text": "1. Write step1.txt\n2. Run the slow command\n3. Write step3.txt\n4. Finish"}
TASK = "Write two files around a slow command"
SLOW_STEP = {
    "tool_calls": [
        {"name": "write_file", "arguments": {"path": "step1.txt", "content": "one\n"}},
        {"name": "run_command", "arguments": {"command": "sleep 1 && echo slept"}},
        {"name": "write_file", "arguments": {"path": "step3.txt", "content": "three\n"}},
    ]
}


class CtrlCDuringCommand:
    """An event handler that presses Ctrl-C (sends SIGINT to this process) once per delay after a command starts."""

    def __init__(self, *delays: float):
        self.delays = delays
        self.thread: threading.Thread | None = None

    def __call__(self, event) -> None:
        if event.kind == "tool_call" and event.data["name"] == "run_command" and self.thread is None:
            self.thread = threading.Thread(target=self._press, daemon=True)
            self.thread.start()

    def _press(self) -> None:
        for delay in self.delays:
            time.sleep(delay)
            os.kill(os.getpid(), signal.SIGINT)


def run(workspace: Path, replies: list[dict], task: str = TASK, resume: str | None = None, presser=None, **overrides):
    settings = Settings(engine="scripted", sandbox="none", **overrides)
    events = []
    handlers = [events.append] + ([presser] if presser else [])
    summary = run_task(task, settings, workspace, handlers, engine=ScriptedEngine(replies), resume=resume)
    if presser is not None and presser.thread is not None:
        presser.thread.join()
    return summary, events


def of_kind(events, kind: str) -> list[dict]:
    return [event.data for event in events if event.kind == kind]


def committed_files(workspace: Path) -> list[str]:
    output = subprocess.run(["git", "log", "--name-only", "--format="], cwd=workspace, capture_output=True, text=True, check=True)
    return [line for line in output.stdout.splitlines() if line]


def test_interrupt_during_command_then_resume(tmp_path, git_home):
    workspace = tmp_path / "ws"
    handler_before = signal.getsignal(signal.SIGINT)
    first, first_events = run(workspace, [PLAN, SLOW_STEP, call("finish", summary="too early")], presser=CtrlCDuringCommand(0.2))

    assert first.status == "interrupted"
    assert first.exit_code == 130
    assert f"--resume {first.run_id}" in first.message
    assert signal.getsignal(signal.SIGINT) is handler_before
    command = next(result for result in of_kind(first_events, "tool_result") if result["name"] == "run_command")
    assert "slept" in command["output"]  # the command ran to its end after the first Ctrl-C
    assert not (workspace / "step3.txt").exists()
    assert "step1.txt" in committed_files(workspace)
    ended = [e for e in read_events(Path(first.trajectory)) if e["event"] == "run_end"]
    assert ended[0]["status"] == "interrupted"

    replies = [call("write_file", path="step3.txt", content="three\n"), call("finish", summary="all written")]
    second, second_events = run(workspace, replies, task="", resume=first.run_id)

    assert second.status == "finished", second.message
    assert second.exit_code == 0
    assert second.run_id != first.run_id
    assert (workspace / "step3.txt").read_text() == "three\n"
    assert of_kind(second_events, "run_start")[0]["resumed_from"] == first.run_id
    assert [r["step"] for r in of_kind(second_events, "reply")] == [first.steps + 1, first.steps + 2]
    restored = [e["message"] for e in of_kind(second_events, "message")]
    assert TASK in restored[1]["content"]
    assert restored[2]["content"].startswith("1. Write step1.txt")
    assert any(m["role"] == "tool" and m["content"] == NOT_RUN_RESULT for m in restored)
    assert any("is now resumed" in m["content"] for m in restored if m["role"] == "user")
    assert "step3.txt" in committed_files(workspace)


def test_second_interrupt_stops_at_once(tmp_path, git_home):
    workspace = tmp_path / "ws"
    slow = {
        "tool_calls": [
            {"name": "write_file", "arguments": {"path": "kept.txt", "content": "kept\n"}},
            {"name": "run_command", "arguments": {"command": "sleep 20"}},
        ]
    }
    started = time.monotonic()

    summary, _ = run(workspace, [PLAN, slow, call("finish", summary="x")], presser=CtrlCDuringCommand(0.2, 0.2))

    assert time.monotonic() - started < 10
    assert summary.status == "interrupted"
    assert summary.exit_code == 130
    assert "kept.txt" in committed_files(workspace)
    lines = Path(summary.trajectory).read_text().splitlines()
    assert all(json.loads(line) for line in lines)
    assert json.loads(lines[-1])["event"] == "run_end"


def test_resume_of_unknown_run_lists_runs(tmp_path):
    workspace = tmp_path / "ws"
    first, _ = run(workspace, [PLAN], checkpoints=False)

    with pytest.raises(UsageError, match=f"No run 'nope'.*{first.run_id}"):
        load_resume(Workspace(workspace), "nope")


def test_resume_of_finished_run_is_refused(tmp_path):
    workspace = tmp_path / "ws"
    done, _ = run(workspace, [PLAN, call("finish", summary="ok")], checkpoints=False)

    with pytest.raises(UsageError, match="already finished"):
        load_resume(Workspace(workspace), done.run_id)


def test_pair_tool_results_fills_missing_results():
    calls = [ToolCall("read_file", {"path": "a"}, "call_1"), ToolCall("read_file", {"path": "b"}, "call_2")]
    messages = [
        Message("assistant", "", tool_calls=calls),
        Message("tool", "a text", name="read_file", tool_call_id="call_1"),
        Message("user", "next"),
    ]

    paired = pair_tool_results(messages)

    assert [(m.role, m.tool_call_id) for m in paired] == [("assistant", ""), ("tool", "call_1"), ("tool", "call_2"), ("user", "")]
    assert paired[2].content == NOT_RUN_RESULT


def test_cli_resume_after_step_limit(tmp_path):
    workspace = tmp_path / "ws"
    first_script = write_script(tmp_path / "first.jsonl", [PLAN, call("write_file", path="a.txt", content="a\n")])
    common = ["--engine", "scripted", "--workspace", str(workspace), "--sandbox", "none", "--no-checkpoints", "--json"]
    runner = CliRunner()

    first = runner.invoke(app, ["build", TASK, "--script", str(first_script), "--max-steps", "2", *common])
    run_id = json.loads(first.output.splitlines()[-1])["run_id"]
    second_script = write_script(tmp_path / "second.jsonl", [call("finish", summary="resumed and done")])
    second = runner.invoke(app, ["build", "--resume", run_id, "--script", str(second_script), "--max-steps", "5", *common])
    both = runner.invoke(app, ["build", TASK, "--resume", run_id, "--script", str(second_script), *common])

    assert first.exit_code == 1, first.output
    assert second.exit_code == 0, second.output
    assert json.loads(second.output.splitlines()[-1])["message"] == "resumed and done"
    assert both.exit_code == 2
    assert "either a task or --resume" in both.output
