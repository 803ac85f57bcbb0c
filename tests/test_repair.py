"""Repairs: the loop checks the task's files once they exist, and fixes a failing file from a fresh prompt."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config import Settings
from agent.engines.scripted import ScriptedEngine
from agent.events import EventBus
from agent.loop import ALL_CHECKS_PASSED, Loop, Verification
from agent.verify import CheckOutcome
from agent.repair import MAX_STALLED_REPAIRS, Repairs
from agent.resume import _recorded_messages
from agent.sandbox import Sandbox
from agent.tool import ToolContext, ToolSet
from agent.workspace import Workspace
from tools.files import EditFile, ReadFile, WriteFile, WriteFileFromBlock
from tools.finish import Finish

PLAN = {"text": "1. Write calc.py\n2. Check it"}
TASK = "Write calc.py with add(a, b)."


def call(name: str, **arguments) -> dict:
    return {"tool_calls": [{"name": name, "arguments": arguments}]}


class RecordingEngine(ScriptedEngine):
    """A scripted engine that also keeps the options and the last message of each prompt."""

    def __init__(self, replies):
        super().__init__(replies)
        self.prompts: list[dict] = []

    def reply(self, messages, tools, **options):
        self.prompts.append({"last": messages[-1].content, "count": len(messages), **options})
        return super().reply(messages, tools, **options)


def make_loop(tmp_path: Path, replies: list[dict], verify, writer=None):
    workspace = Workspace(tmp_path / "ws")
    workspace.create()
    context = ToolContext(workspace, Sandbox(workspace.root), Settings(temperature=0.2))
    events = []
    engine = RecordingEngine(replies)
    tools = ToolSet([ReadFile(), writer or WriteFile(), EditFile(), Finish()])
    loop = Loop(engine, tools, context, EventBus(events.append), verify=verify)
    return loop, workspace, events, engine


def verifier(outcomes):
    iterator = iter(outcomes)
    return lambda: next(iterator)


def failing(message: str, progress: float, path: str = "calc.py") -> Verification:
    return Verification(False, message, outcomes=[CheckOutcome("logic", False, message, [path], progress)])


def passing() -> Verification:
    return Verification(True, outcomes=[CheckOutcome("logic", True, "", ["calc.py"], 1.0)])


def test_checks_pass_once_file_written(tmp_path):
    replies = [PLAN, call("write_file", path="calc.py", content="def add(a, b):\n    return a + b\n")]
    loop, _, events, _ = make_loop(tmp_path, replies, verifier([passing()]))

    result = loop.run(TASK)

    assert result.status == "finished"
    assert result.summary == ALL_CHECKS_PASSED
    assert [event.data["passed"] for event in events if event.kind == "verification"] == [True]


def test_failed_check_starts_fresh_repair(tmp_path):
    replies = [
        PLAN,
        call("write_file", path="calc.py", content="def add(a, b):\n    return a - b\n"),
        call("write_file", path="calc.py", content="def add(a, b):\n    return a + b\n"),
    ]
    checks = [failing("test_add: add(1, 2) returned -1, expected 3", 0.5), passing()]
    loop, workspace, events, engine = make_loop(tmp_path, replies, verifier(checks))

    result = loop.run(TASK)

    assert result.status == "finished"
    repair_prompt = engine.prompts[2]
    # System prompt, task with plan request, plan, then the repair prompt alone.
    assert repair_prompt["count"] == 4
    assert "return a - b" in repair_prompt["last"]
    assert "add(1, 2) returned -1, expected 3" in repair_prompt["last"]
    assert "First say in one sentence which line causes this" in repair_prompt["last"]
    assert repair_prompt["allowed_tools"] == ["write_file"]
    assert repair_prompt["tool_choice"] == "auto"
    assert [event.data["path"] for event in events if event.kind == "repair"] == ["calc.py"]
    assert (workspace.root / "calc.py").read_text().endswith("a + b\n")


def test_worse_rewrite_undone_then_afresh(tmp_path):
    first = "def add(a, b):\n    return a - b\n"
    replies = [
        PLAN,
        call("write_file", path="calc.py", content=first),
        call("write_file", path="calc.py", content="def add(a, b) return\n"),
        call("write_file", path="calc.py", content="def add(a, b):\n    return a + b\n"),
    ]
    first_failure = failing("add(1, 2) returned -1, expected 3", 0.5)
    # The third check runs after the better version was put back.
    checks = [first_failure, failing("SyntaxError: invalid syntax (calc.py, line 1)", 0.0), first_failure, passing()]
    loop, workspace, events, engine = make_loop(tmp_path, replies, verifier(checks))

    result = loop.run(TASK)

    assert result.status == "finished"
    second_repair = engine.prompts[3]
    # A failure that survived a repair is asked for afresh, without the file a small model would copy
    # or the failure it would misread.
    assert second_repair["last"].startswith("Write calc.py again from the start.")
    assert "return a - b" not in second_repair["last"]
    assert "returned -1" not in second_repair["last"]
    assert (workspace.root / "calc.py").read_text().endswith("a + b\n")
    notices = [event.data["text"] for event in events if event.kind == "notice"]
    assert any("better version of calc.py" in text for text in notices)


def test_blocks_repair_takes_reply_block(tmp_path):
    replies = [
        PLAN,
        call("write_file", path="calc.py"),
        {"text": "```python\ndef add(a, b):\n    return a - b\n```"},
        {"text": "The return line subtracts; it must add.\n```python\ndef add(a, b):\n    return a + b\n```"},
    ]
    checks = [failing("add(1, 2) returned -1, expected 3", 0.5), passing()]
    loop, workspace, events, engine = make_loop(tmp_path, replies, verifier(checks), writer=WriteFileFromBlock())

    result = loop.run(TASK)

    assert result.status == "finished"
    assert (workspace.root / "calc.py").read_text() == "def add(a, b):\n    return a + b\n"
    repair_prompt = engine.prompts[3]
    assert repair_prompt["tool_choice"] == "none"
    assert "Write the whole corrected calc.py in one code block" in repair_prompt["last"]
    written = [event.data for event in events if event.kind == "tool_call"]
    assert [call["arguments"]["path"] for call in written] == ["calc.py", "calc.py"]
    assert result.totals.steps == 3


def test_restore_best_file_exact_bytes(tmp_path):
    (tmp_path / "calc.py").write_bytes(b"x = 1\r\n")
    repairs = Repairs(tmp_path, ["calc.py"])
    repairs.plan(failing("x is 1", 0.5), {"calc.py"})
    (tmp_path / "calc.py").write_bytes(b"broken(\n")

    _, restored = repairs.plan(failing("SyntaxError", 0.0), {"calc.py"})

    assert restored == ["calc.py"]
    assert (tmp_path / "calc.py").read_bytes() == b"x = 1\r\n"


def test_repairs_surviving_failure_asks_afresh(tmp_path):
    (tmp_path / "calc.py").write_text("x = 1\n")
    repairs = Repairs(tmp_path, ["calc.py"])

    prompts = [repairs.plan(failing("same failure", 0.5), {"calc.py"})[0].prompt for _ in range(2)]

    assert "x = 1" in prompts[0]
    assert "same failure" in prompts[0]
    assert "x = 1" not in prompts[1]
    assert "same failure" not in prompts[1]
    assert "x = 1" in repairs.plan(failing("a new failure", 0.6), {"calc.py"})[0].prompt


def test_repairs_stalled_file_yields_turn(tmp_path):
    (tmp_path / "logic.py").write_text("x = 1\n")
    (tmp_path / "page.html").write_text("<p>\n")
    repairs = Repairs(tmp_path, ["logic.py", "page.html"])
    both = Verification(False, "logic fails", outcomes=[
        CheckOutcome("logic", False, "logic fails", ["logic.py"], 0.5),
        CheckOutcome("page", False, "page fails", ["page.html"], 0.0),
    ])

    chosen = [repairs.plan(both, {"logic.py", "page.html"})[0].path for _ in range(MAX_STALLED_REPAIRS + 1)]

    assert chosen[:MAX_STALLED_REPAIRS] == ["logic.py"] * MAX_STALLED_REPAIRS
    assert chosen[-1] == "page.html"


def test_repairs_count_progress_by_score(tmp_path):
    (tmp_path / "calc.py").write_text("x = 1\n")
    repairs = Repairs(tmp_path, ["calc.py"])

    first, _ = repairs.plan(failing("first failure", 0.5), {"calc.py"})
    # The message changed but the score did not: the repair did not help, so the next is fresh.
    second, _ = repairs.plan(failing("another wording", 0.5), {"calc.py"})
    third, _ = repairs.plan(failing("a better failure", 0.75), {"calc.py"})

    assert "x = 1" in first.prompt
    assert "x = 1" not in second.prompt
    assert "x = 1" in third.prompt


def test_repairs_blame_only_changed_file(tmp_path):
    (tmp_path / "x.py").write_text("x = 1\n")
    (tmp_path / "y.py").write_text("y = 1\n")
    repairs = Repairs(tmp_path, ["x.py", "y.py"])
    editable = {"x.py", "y.py"}
    first = Verification(False, "b fails", outcomes=[
        CheckOutcome("a", True, "", ["x.py", "y.py"], 1.0),
        CheckOutcome("b", False, "b fails", ["y.py"], 0.0),
    ])
    repairs.plan(first, editable)
    (tmp_path / "y.py").write_text("y = 2\n")
    second = Verification(False, "a fails", outcomes=[
        CheckOutcome("a", False, "a fails", ["x.py", "y.py"], 0.0),
        CheckOutcome("b", False, "b fails", ["y.py"], 0.0),
    ])

    repair, restored = repairs.plan(second, editable)

    # y.py changed and scores lower with it; x.py did not change, so it is neither put back nor blamed.
    assert restored == ["y.py"]
    assert repair is None
    assert (tmp_path / "x.py").read_text() == "x = 1\n"


def test_unblamed_failure_stays_in_conversation(tmp_path):
    replies = [PLAN, call("write_file", path="calc.py", content="x = 1\n"), call("write_file", path="calc.py", content="x = 2\n")]
    checks = [Verification(False, "the server did not start"), Verification(True)]
    loop, _, events, engine = make_loop(tmp_path, replies, verifier(checks))

    result = loop.run(TASK)

    assert result.status == "finished"
    assert not [event for event in events if event.kind == "repair"]
    assert "the server did not start" in engine.prompts[2]["last"]


def test_resume_drops_rewound_messages():
    message = {"role": "user", "content": "x"}
    events = [
        {"event": "message", "index": 0, "message": message},
        {"event": "message", "index": 1, "message": message},
        {"event": "message", "index": 2, "message": message},
        {"event": "rewind", "length": 1},
        {"event": "message", "index": 1, "message": {"role": "user", "content": "repair"}},
    ]

    messages = _recorded_messages(events)

    assert [m.content for m in messages] == ["x", "repair"]


def test_repair_rewrites_broken_write_first(tmp_path):
    replies = [
        PLAN,
        call("write_file", path="calc.py"),
        {"text": "```python\ndef add(a, b):\n    return a - b\n```"},
        {"text": "```python\ndef add(a, b) return a + b\n```"},
        {"text": "```python\ndef add(a, b):\n    return a + b\n```"},
    ]
    checks = [failing("add(1, 2) returned -1, expected 3", 0.5), passing()]
    loop, workspace, events, engine = make_loop(tmp_path, replies, verifier(checks), writer=WriteFileFromBlock())

    result = loop.run(TASK)

    assert result.status == "finished"
    # The syntax error was reported in the same repair, which went on without going back to the task.
    assert engine.prompts[4]["count"] == engine.prompts[3]["count"] + 2
    assert "syntax error" in engine.prompts[4]["last"]
    assert len([event for event in events if event.kind == "verification"]) == 2


def test_stopped_run_keeps_best_files(tmp_path, monkeypatch):
    monkeypatch.setattr("agent.loop.MAX_VERIFY_ROUNDS", 2)
    replies = [
        PLAN,
        call("write_file", path="calc.py", content="def add(a, b):\n    return a - b\n"),
        call("write_file", path="calc.py", content="def add(a, b):\n    return None\n"),
    ]
    checks = [failing("add(1, 2) returned -1, expected 3", 0.5), failing("add(1, 2) returned None, expected 3", 0.0)]
    loop, workspace, events, _ = make_loop(tmp_path, replies, verifier(checks))

    result = loop.run(TASK)

    assert result.status == "checks_failed"
    assert (workspace.root / "calc.py").read_text().endswith("return a - b\n")
    notices = [event.data["text"] for event in events if event.kind == "notice"]
    assert any("put back the best version of calc.py" in text for text in notices)


def test_repair_ignores_fenced_call(tmp_path):
    fenced_call = '```json\n{"name": "write_file", "arguments": {"path": "calc.py", "content": "x"}}\n```'
    replies = [
        PLAN,
        call("write_file", path="calc.py"),
        {"text": "```python\ndef add(a, b):\n    return a - b\n```"},
        {"text": fenced_call},
        {"text": "```python\ndef add(a, b):\n    return a + b\n```"},
    ]
    checks = [failing("add(1, 2) returned -1, expected 3", 0.5), passing()]
    loop, workspace, events, engine = make_loop(tmp_path, replies, verifier(checks), writer=WriteFileFromBlock())

    result = loop.run(TASK)

    assert result.status == "finished"
    assert (workspace.root / "calc.py").read_text().endswith("return a + b\n")
    displays = [event.data["display"] for event in events if event.kind == "tool_result"]
    assert "no content written" in displays


def test_repair_checks_again_when_plan_step_unfinished(tmp_path):
    broken = {"text": "```python\ndef add(a, b) return a + b\n```"}
    replies = [
        PLAN,
        call("write_file", path="calc.py"),
        broken,
        call("finish", summary="done"),
        broken,
        broken,
        broken,
        {"text": "```python\ndef add(a, b):\n    return a + b\n```"},
    ]
    syntax_error = failing("SyntaxError: invalid syntax (calc.py, line 1)", 0.0)
    checks = [syntax_error, syntax_error, passing()]
    loop, workspace, events, _ = make_loop(tmp_path, replies, verifier(checks), writer=WriteFileFromBlock())

    result = loop.run(TASK)

    # The plan's write step never finished, yet each repair ends with the checks run again.
    assert result.status == "finished"
    assert len([event for event in events if event.kind == "verification"]) == 3
    assert [event.data["path"] for event in events if event.kind == "repair"] == ["calc.py", "calc.py"]


def test_repairs_leave_user_files_alone(tmp_path):
    (tmp_path / "input.txt").write_text("one\ntwo\nthree\n")
    repairs = Repairs(tmp_path, ["count.py"])
    blamed = Verification(False, "input.txt has 2 lines", outcomes=[CheckOutcome("tests", False, "input.txt", ["input.txt"], 0.5)])

    repair, restored = repairs.plan(blamed, {"count.py"})

    assert repair is None
    assert restored == []
    assert not repairs.best


def test_repairs_skip_binary_files(tmp_path):
    (tmp_path / "out.bin").write_bytes(b"\xff\xfe")
    (tmp_path / "gen.py").write_text("x = 1\n")
    repairs = Repairs(tmp_path, ["gen.py"])
    blamed = Verification(False, "out.bin is wrong", outcomes=[CheckOutcome("run", False, "wrong", ["out.bin", "gen.py"], 0.0)])

    repair, _ = repairs.plan(blamed, {"gen.py", "out.bin"})

    assert repair.path == "gen.py"


def test_put_back_alone_checks_again_and_finishes(tmp_path):
    replies = [
        {"text": "1. Write a.py\n2. Write b.py"},
        call("write_file", path="a.py", content="print('A')\n"),
        call("write_file", path="b.py", content="print('X')\n"),
        {"tool_calls": [
            {"name": "write_file", "arguments": {"path": "a.py", "content": "print('Z')\n"}},
            {"name": "write_file", "arguments": {"path": "b.py", "content": "print('B')\n"}},
        ]},
    ]

    def outcome(name, text):
        passed = text == name.upper()
        return CheckOutcome(name, passed, "" if passed else f"{name}.py printed {text}", [f"{name}.py"], 1.0 if passed else 0.0)

    def verify():
        printed_a = (workspace_root / "a.py").read_text()[7]
        printed_b = (workspace_root / "b.py").read_text()[7]
        outcomes = [outcome("a", printed_a), outcome("b", printed_b)]
        failed = [item.message for item in outcomes if not item.passed]
        return Verification(not failed, failed[0] if failed else "", outcomes=outcomes)

    loop, workspace, events, _ = make_loop(tmp_path, replies, verify)
    workspace_root = workspace.root

    result = loop.run("Write a.py, which prints A, and b.py, which prints B.")

    assert result.status == "finished"
    assert (workspace.root / "a.py").read_text() == "print('A')\n"
    notices = [event.data["text"] for event in events if event.kind == "notice"]
    assert any("better version of a.py" in text for text in notices)


def test_unchecked_verification_keeps_stuck_detection(tmp_path):
    replies = [PLAN, call("write_file", path="calc.py", content="x = 1\n")] + [{"text": "I am done thinking."}] * 12
    nothing_checked = Verification(True, checked=False, conclusive=False)
    loop, _, events, _ = make_loop(tmp_path, replies, lambda: nothing_checked)

    result = loop.run(TASK)

    assert result.status == "stuck"
    assert [event for event in events if event.kind == "stuck_warning"]


def content_verifier(root: Path):
    """Return a verifier that runs calc.py: add and sub each count half, and a broken file scores 0."""

    def verify() -> Verification:
        namespace: dict = {}
        try:
            exec((root / "calc.py").read_text(), namespace)
            results = [namespace["add"](2, 1) == 3, namespace["sub"](2, 1) == 1]
        except Exception:
            results = [False, False]
        if all(results):
            return passing()
        return failing(f"{results.count(False)} of 2 tests failed", results.count(True) / 2)

    return verify


def two_versions_loop(tmp_path: Path, first: str, second: str):
    """Return a loop whose model writes calc.py as `first`, then as `second`, and calc.py's real verifier."""
    replies = [PLAN, call("write_file", path="calc.py", content=first), call("write_file", path="calc.py", content=second)]
    loop, workspace, events, engine = make_loop(tmp_path, replies, None)
    return loop, workspace, events, engine, content_verifier(workspace.root)


def test_definition_from_earlier_version_combined(tmp_path):
    add_right = "import math\n\n\ndef add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a + b\n"
    sub_right = "def add(a, b):\n    return a * b\n\n\ndef sub(a, b):\n    return a - b\n"
    loop, workspace, events, engine, verify = two_versions_loop(tmp_path, add_right, sub_right)
    loop.verify = verify

    result = loop.run(TASK)

    assert result.status == "finished"
    assert len(engine.prompts) == 3
    text = (workspace.root / "calc.py").read_text()
    assert "return a + b\n\n\ndef sub(a, b):\n    return a - b" in text
    assert text.startswith("import math\n")
    notices = [event.data["text"] for event in events if event.kind == "notice"]
    assert "kept calc.py with add from an earlier version: the checks score it higher" in notices


def test_unhelpful_combinations_leave_best_file(tmp_path):
    first = "def add(a, b):\n    return 0\n\n\ndef sub(a, b):\n    return a - b\n"
    second = "def add(a, b):\n    return 1\n\n\ndef sub(a, b):\n    return 0\n"
    loop, workspace, events, _, verify = two_versions_loop(tmp_path, first, second)
    checked: list[str] = []

    def recording() -> Verification:
        checked.append((workspace.root / "calc.py").read_text())
        return verify()

    loop.verify = recording
    loop.settings.max_steps = 3

    loop.run(TASK)

    assert (workspace.root / "calc.py").read_text() == first
    # Both combinations of the second version into the first were checked, each once.
    combined = [text for text in checked if text not in (first, second)]
    assert sorted(combined) == sorted({first.replace("return 0", "return 1"), first.replace("a - b", "0")})
    notices = [event.data["text"] for event in events if event.kind == "notice"]
    assert not any(text.startswith("kept calc.py with") for text in notices)


def test_repairs_yield_each_combination_once(tmp_path):
    (tmp_path / "calc.py").write_text("def add(a, b):\n    return 0\n")
    repairs = Repairs(tmp_path, ["calc.py"])
    repairs.plan(failing("add is wrong", 0.0), {"calc.py"})
    (tmp_path / "calc.py").write_text("def add(a, b):\n    return 1\n")
    repairs.plan(failing("add is wrong", 0.0), {"calc.py"})

    first = [combination.name for combination in repairs.combinations("calc.py")]
    again = list(repairs.combinations("calc.py"))

    assert first == ["add"]
    assert again == []


def test_crash_during_combination_restores_best(tmp_path):
    first = "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return 0\n"
    second = "def add(a, b):\n    return 0\n\n\ndef sub(a, b):\n    return a - b\n"
    loop, workspace, _, _, verify = two_versions_loop(tmp_path, first, second)

    def crashing() -> Verification:
        if (workspace.root / "calc.py").read_text() not in (first, second):
            raise RuntimeError("the check process failed")
        return verify()

    loop.verify = crashing

    with pytest.raises(RuntimeError):
        loop.run(TASK)

    assert (workspace.root / "calc.py").read_text() == second
