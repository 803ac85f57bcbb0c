"""A loop that finishes: stuck detection, the context budget and verification before finishing."""

from __future__ import annotations

from pathlib import Path

from agent.config import Settings
from agent.context import shorten_text
from agent.engines.scripted import ScriptedEngine
from agent.session import run_task
from agent.verify import first_failure
from tests.conftest import call

PLAN = {"text": "1. Look at the files\n2. Finish"}
TASK = "Summarize the data files"


class SmallContextEngine(ScriptedEngine):
    """A scripted engine with a small context that records every prompt's size and rejects an oversized one."""

    context_size = 2000

    def __init__(self, replies):
        super().__init__(replies)
        self.prompt_sizes: list[int] = []
        self.prompts: list[list[str]] = []

    def reply(self, messages, tools, **options):
        size = self.count_tokens(messages, tools)
        self.prompt_sizes.append(size)
        self.prompts.append([message.content for message in messages])
        assert size <= self.context_size, f"prompt of {size} tokens sent to a context of {self.context_size}"
        return super().reply(messages, tools, **options)


def run(tmp_path: Path, replies: list[dict], engine=None, task: str = TASK, **overrides):
    settings = Settings(engine="scripted", sandbox="none", checkpoints=False, **overrides)
    events = []
    summary = run_task(task, settings, tmp_path / "ws", [events.append], engine=engine or ScriptedEngine(replies))
    return summary, events


def messages_sent(events) -> list[dict]:
    """Return the conversation as the loop recorded it, later versions of a message replacing earlier ones."""
    by_index = {event.data["index"]: event.data["message"] for event in events if event.kind == "message"}
    return [by_index[index] for index in sorted(by_index)]


def of_kind(events, kind: str) -> list[dict]:
    return [event.data for event in events if event.kind == kind]


def test_same_read_three_times_is_stuck(tmp_path):
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "config.toml").write_text("name = 'demo'\n")
    read = call("read_file", path="config.toml")

    summary, events = run(tmp_path, [PLAN, read, read, read, call("finish", summary="never reached")])

    assert summary.status == "stuck"
    assert summary.exit_code == 1
    assert "read_file" in summary.message
    warnings = of_kind(events, "stuck_warning")
    assert len(warnings) == 1
    assert 'path="config.toml"' in warnings[0]["action"]
    user_texts = [m["content"] for m in messages_sent(events) if m["role"] == "user"]
    assert any("same thing 2 times with the same result" in text for text in user_texts)


def test_warned_model_that_changes_course_finishes(tmp_path):
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "config.toml").write_text("name = 'demo'\n")
    read = call("read_file", path="config.toml")
    replies = [PLAN, read, read, call("list_files"), call("finish", summary="done")]

    summary, events = run(tmp_path, replies)

    assert summary.status == "finished"
    assert len(of_kind(events, "stuck_warning")) == 1


def test_alternating_useless_steps_are_stuck(tmp_path):
    read_missing = call("read_file", path="game.py")
    listing = call("list_files")

    summary, events = run(tmp_path, [PLAN] + [read_missing, listing] * 3 + [call("finish", summary="never reached")])

    assert summary.status == "stuck"
    assert len(of_kind(events, "stuck_warning")) >= 1


def test_same_error_with_other_arguments_is_stuck(tmp_path):
    replies = [PLAN] + [call("run_command", command="ls", timeout="soon")] * 2 + [call("run_command", command="pwd", timeout="soon")]

    summary, _ = run(tmp_path, replies + [call("finish", summary="x")])

    assert summary.status == "stuck"
    assert summary.exit_code == 1


def test_outputs_twice_the_context_are_compacted(tmp_path):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    line = "value,{n},some measured data for the row\n"
    for number in range(12):
        (workspace / f"data{number}.csv").write_text("".join(line.format(n=n) for n in range(50)))
    reads = [call("read_file", path=f"data{number}.csv") for number in range(12)]
    engine = SmallContextEngine([PLAN, *reads, call("finish", summary="read them all")])

    summary, events = run(tmp_path, [], engine=engine, max_reply_tokens=200)

    outputs = sum(len(e["output"]) for e in of_kind(events, "tool_result")) // 4
    assert outputs >= 2 * engine.context_size
    assert summary.status == "finished"
    assert max(engine.prompt_sizes) <= engine.context_size - 200
    compactions = of_kind(events, "compaction")
    assert compactions and all(c["tokens_after"] < c["tokens_before"] for c in compactions)
    assert len(compactions) <= len(reads) // 2
    first, last = engine.prompts[1], engine.prompts[-1]
    assert last[:4] == first[:4]
    assert TASK in last[1]
    assert last[2].startswith("1. Look at the files")
    assert any("left out here to save context" in content for content in last[4:])


def test_output_larger_than_context_is_cut(tmp_path):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "big.txt").write_text("x" * 100 + "\n" + "line of text\n" * 400)
    engine = SmallContextEngine([PLAN, call("read_file", path="big.txt"), call("finish", summary="ok")])

    summary, events = run(tmp_path, [], engine=engine, max_reply_tokens=200)

    assert summary.status == "finished"
    assert max(engine.prompt_sizes) <= engine.context_size - 200
    sent = engine.prompts[-1][-1]
    assert sent.startswith("   1  " + "x" * 100)
    assert "left out here to save context" in sent
    recorded = [m["content"] for m in messages_sent(events) if m["role"] == "tool"]
    assert len(recorded[0]) > 4000  # the trajectory keeps the full output for a resume to compact anew


def test_prompt_that_cannot_fit_stops_with_context_limit(tmp_path):
    engine = SmallContextEngine([PLAN, call("finish", summary="ok")])

    summary, events = run(tmp_path, [], engine=engine, task="Build this: " + "very long task " * 800)

    assert summary.status == "context_limit"
    assert summary.exit_code == 1
    assert "--ctx" in summary.message
    assert engine.prompt_sizes == []


def test_shorten_text_keeps_head_tail_and_note():
    text = "".join(f"line {n}\n" for n in range(500))

    short = shorten_text(text, 400)
    shortest = shorten_text(short, 0)

    assert short.startswith("line 0\n")
    assert short.rstrip().endswith("line 499")
    assert "left out here to save context" in short
    assert len(short) < len(text) // 3
    assert shorten_text(short, 400) == short
    assert shortest.startswith("[...")
    assert len(shortest) < 100


def test_default_verifier_sends_failing_test_back(tmp_path):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "calc.py").write_text("def add(a, b):\n    return a - b\n")
    (workspace / "test_calc.py").write_text("from calc import add\n\ndef test_add():\n    assert add(2, 2) == 4\n")
    fix = call("edit_file", path="calc.py", search="return a - b", replace="return a + b")
    replies = [PLAN, call("finish", summary="first"), fix, call("finish", summary="fixed")]

    summary, events = run(tmp_path, replies)

    verifications = of_kind(events, "verification")
    assert [v["passed"] for v in verifications] == [False, True]
    assert "test_add" in verifications[0]["failure"]
    assert "assert 0 == 4" in verifications[0]["failure"]
    assert summary.status == "finished"
    assert summary.message == "fixed"


def test_default_verifier_without_tests_passes(tmp_path):
    replies = [PLAN, call("write_file", path="hello.py", content="print('hello')\n"), call("finish", summary="ok")]

    summary, events = run(tmp_path, replies)

    assert summary.status == "finished"
    assert [v["passed"] for v in of_kind(events, "verification")] == [True]


def test_tests_still_failing_after_rounds_exit_one(tmp_path, monkeypatch):
    monkeypatch.setattr("agent.loop.MAX_VERIFY_ROUNDS", 2)
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "test_fail.py").write_text("def test_never():\n    assert False, 'always fails'\n")
    attempt = [call("write_file", path="notes.txt", content="tried\n"), call("finish", summary="try")]
    replies = [PLAN] + attempt * 2

    summary, _ = run(tmp_path, replies)

    assert summary.status == "checks_failed"
    assert summary.exit_code == 1
    assert "always fails" in summary.message


def test_finish_without_changes_does_not_use_a_round(tmp_path):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "test_fail.py").write_text("def test_never():\n    assert False, 'always fails'\n")
    replies = [PLAN, call("finish", summary="one"), call("finish", summary="two")]

    summary, events = run(tmp_path, replies)

    assert len(of_kind(events, "verification")) == 1
    assert any("No file changed since the checks failed" in m["content"] for m in messages_sent(events) if m["role"] == "user")


def test_first_failure_picks_the_first_section():
    output = (
        "F.\n=================================== FAILURES ===================================\n"
        "___________________________________ test_one ___________________________________\n"
        "    def test_one():\n>       assert 1 == 2\nE       assert 1 == 2\n"
        "___________________________________ test_two ___________________________________\n"
        "E       other\n=========================== short test summary info ============================\n"
        "FAILED test_a.py::test_one - assert 1 == 2\n"
    )

    text = first_failure(output)

    assert text.startswith("FAILED test_a.py::test_one - assert 1 == 2")
    assert "E       assert 1 == 2" in text
    assert "other" not in text
