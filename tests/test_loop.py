"""The planner loop with the scripted engine and the real file tools, without CLI or git."""

from __future__ import annotations

from pathlib import Path

from agent.config import Settings
from agent.engines.scripted import ScriptedEngine
from agent.events import EventBus
from agent.loop import Loop, Verification
from agent.sandbox import Sandbox
from agent.tool import ToolContext, ToolSet
from agent.workspace import Workspace
from tools.files import EditFile, ReadFile, WriteFile
from tools.finish import Finish

PLAN = {"text": "1. Write hello.py\n2. Finish"}


def call(name: str, **arguments) -> dict:
    return {"tool_calls": [{"name": name, "arguments": arguments}]}


def make_loop(tmp_path: Path, replies: list[dict], verify=None, **settings):
    workspace = Workspace(tmp_path / "ws")
    workspace.create()
    context = ToolContext(workspace, Sandbox(workspace.root), Settings(**settings))
    events = []
    bus = EventBus(events.append)
    tools = ToolSet([ReadFile(), WriteFile(), EditFile(), Finish()])
    loop = Loop(ScriptedEngine(replies), tools, context, bus, verify=verify)
    return loop, workspace, events


def kinds(events) -> list[str]:
    return [event.kind for event in events]


def test_plan_then_write_then_finish(tmp_path):
    replies = [PLAN, call("write_file", path="hello.py", content="print('hello')\n"), call("finish", summary="done")]
    loop, workspace, events = make_loop(tmp_path, replies)

    result = loop.run("Create hello.py")

    assert result.status == "finished"
    assert result.summary == "done"
    assert (workspace.root / "hello.py").read_text() == "print('hello')\n"
    assert result.totals.files_written == ["hello.py"]
    assert kinds(events)[:2] == ["plan", "reply"] or "plan" in kinds(events)
    plan_event = next(event for event in events if event.kind == "plan")
    assert plan_event.data["text"].startswith("1. Write hello.py")


def test_step_limit_stops_run(tmp_path):
    replies = [PLAN] + [call("read_file", path="missing.txt")] * 10
    loop, _, _ = make_loop(tmp_path, replies, max_steps=4)

    result = loop.run("Loop forever")

    assert result.status == "max_steps"
    assert result.totals.steps == 4
    assert result.totals.failed_calls == 3


def test_script_exhausted_ends_run(tmp_path):
    loop, _, _ = make_loop(tmp_path, [PLAN])

    result = loop.run("Anything")

    assert result.status == "script_exhausted"
    assert "no reply left" in result.summary


def test_tool_error_goes_back_to_model(tmp_path):
    replies = [PLAN, call("read_file", path="../etc/passwd"), call("finish", summary="ok")]
    loop, _, events = make_loop(tmp_path, replies)

    result = loop.run("Read outside")

    results = [event.data for event in events if event.kind == "tool_result"]
    assert results[0]["ok"] is False
    assert "outside the workspace" in results[0]["output"]
    tool_messages = [m for m in result.messages if m.role == "tool"]
    assert "outside the workspace" in tool_messages[0].content


def test_unknown_tool_is_refused_not_run(tmp_path):
    replies = [PLAN, call("delete_everything", path="."), call("finish", summary="ok")]
    loop, _, events = make_loop(tmp_path, replies)

    result = loop.run("Do it")

    assert result.status == "finished"
    assert result.totals.refused_calls == 1
    assert not [event for event in events if event.kind == "tool_call" and event.data["name"] == "delete_everything"]
    nudges = [m.content for m in result.messages if m.role == "user"]
    assert any("There is no tool named 'delete_everything'" in text for text in nudges)


def test_reply_without_call_is_nudged(tmp_path):
    replies = [PLAN, {"text": "I will now write the file."}, call("finish", summary="ok")]
    loop, _, _ = make_loop(tmp_path, replies)

    result = loop.run("Do it")

    assert any("had no tool call" in m.content for m in result.messages if m.role == "user")


def test_duplicate_write_in_one_reply_runs_once(tmp_path):
    write = {"name": "write_file", "arguments": {"path": "a.txt", "content": "x\n"}}
    replies = [PLAN, {"tool_calls": [write, write]}, call("finish", summary="ok")]
    loop, _, events = make_loop(tmp_path, replies)

    loop.run("Write a.txt")

    results = [event.data for event in events if event.kind == "tool_result"]
    assert results[0]["display"].startswith("created a.txt")
    assert "not run again" in results[1]["display"]


def test_failed_verification_returns_to_model(tmp_path):
    outcomes = iter([Verification(False, "test_add failed: 1 + 1 != 3"), Verification(True)])
    replies = [PLAN, call("finish", summary="first"), call("write_file", path="fix.py", content="x = 2\n"), call("finish", summary="second")]
    loop, _, events = make_loop(tmp_path, replies, verify=lambda: next(outcomes))

    result = loop.run("Fix it")

    assert result.status == "finished"
    assert result.summary == "second"
    assert any("test_add failed" in m.content for m in result.messages if m.role == "user")
    assert [e.data["passed"] for e in events if e.kind == "verification"] == [False, True]


def test_native_gemma4_call_in_text_runs(tmp_path):
    text = '<|tool_call>call:write_file{content:<|"|>print("hi")\n<|"|>,path:<|"|>hello.py<|"|>}<tool_call|>'
    replies = [PLAN, {"text": text}, call("finish", summary="ok")]
    loop, workspace, _ = make_loop(tmp_path, replies)

    loop.run("Hello")

    assert (workspace.root / "hello.py").read_text() == 'print("hi")\n'


def test_finish_before_named_files_exist_is_refused(tmp_path):
    replies = [PLAN, call("finish", summary="too early"), call("write_file", path="hello.py", content="print(1)\n"), call("finish", summary="done")]
    loop, workspace, _ = make_loop(tmp_path, replies)

    result = loop.run("Create hello.py")

    assert result.status == "finished"
    assert result.summary == "done"
    assert any("hello.py does not exist yet" in m.content for m in result.messages if m.role == "user")


def test_finish_refused_for_missing_files_twice_at_most(tmp_path):
    replies = [PLAN] + [call("finish", summary="done")] * 3
    loop, _, events = make_loop(tmp_path, replies)

    result = loop.run("Create hello.py")

    assert result.status == "finished"
    assert len([e for e in events if e.kind == "notice" and "finish rejected" in e.data["text"]]) == 2
