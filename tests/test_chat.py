"""`gemma-agent chat` driven through a pseudo-terminal with the scripted engine, and its history across turns."""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import pexpect
import pytest
from rich.console import Console

from agent.chat_session import ChatSession
from agent.config import load_settings
from agent.engines.scripted import ScriptedEngine
from tests.conftest import call, write_script

TIMEOUT_SECONDS = 30


def spawn_chat(tmp_path: Path, home: Path, replies: list[dict]) -> pexpect.spawn:
    script = write_script(tmp_path / "script.jsonl", replies)
    env = {**os.environ, "HOME": str(home), "TERM": "dumb", "NO_COLOR": "1", "COLUMNS": "200", "PYTHONUNBUFFERED": "1"}
    env = {key: value for key, value in env.items() if not key.startswith("GEMMA_AGENT_")}
    argv = ["-m", "agent", "chat", "--engine", "scripted", "--script", str(script), "--workspace", str(tmp_path / "ws"), "--sandbox", "none"]
    return pexpect.spawn(sys.executable, argv, env=env, cwd=str(tmp_path), encoding="utf-8", timeout=TIMEOUT_SECONDS)


def test_chat_session_in_a_terminal(tmp_path, git_home):
    replies = [
        call("write_file", path="hello.txt", content="hello\n"),
        {"text": "I wrote hello.txt."},
        {"text": "You said: second."},
    ]
    child = spawn_chat(tmp_path, git_home, replies)
    hello = tmp_path / "ws" / "hello.txt"

    child.expect_exact("you> ")
    child.sendline("please write hello.txt")
    child.expect_exact("write_file")
    child.expect_exact("I wrote hello.txt.")
    child.expect_exact("you> ")
    assert hello.read_text() == "hello\n"

    child.sendline("/diff")
    child.expect_exact("+hello")
    child.expect_exact("you> ")

    child.sendline("/model")
    child.expect_exact("engine: scripted")
    child.expect_exact("you> ")

    child.sendline("/undo")
    child.expect_exact("Undid 1 step")
    child.expect_exact("you> ")
    assert not hello.exists()

    child.sendline("second message")
    child.expect_exact("You said: second.")
    child.expect_exact("you> ")

    child.sendline("/help")
    child.expect_exact("/clear")
    child.expect_exact("you> ")
    child.sendline("/nonsense")
    child.expect_exact("Unknown command /nonsense")
    child.expect_exact("you> ")
    child.sendline("/exit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_chat_exhausted_script_then_ctrl_d(tmp_path, git_home):
    child = spawn_chat(tmp_path, git_home, [{"text": "Only one answer."}])
    child.expect_exact("you> ")
    child.sendline("first")
    child.expect_exact("Only one answer.")
    child.expect_exact("you> ")
    child.sendline("second")
    child.expect_exact("turn ended: script_exhausted")
    child.expect_exact("you> ")
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


class RecordingEngine(ScriptedEngine):
    """A scripted engine that records how many messages each request carried."""

    def __init__(self, replies):
        super().__init__(replies)
        self.history_sizes: list[int] = []

    def reply(self, messages, tools, **kwargs):
        self.history_sizes.append(len(messages))
        self.last_messages = list(messages)
        return super().reply(messages, tools, **kwargs)


def run_session(tmp_path: Path, replies: list[dict], lines: list[str]) -> tuple[RecordingEngine, str]:
    engine = RecordingEngine(replies)
    settings = load_settings({"engine": "scripted", "sandbox": "none", "checkpoints": False})
    output = io.StringIO()
    feed = iter(lines)

    def read_line(prompt: str) -> str:
        try:
            return next(feed)
        except StopIteration:
            raise EOFError from None

    session = ChatSession(settings, tmp_path / "ws", engine, console=Console(file=output, width=200), read_line=read_line)
    assert session.run() == 0
    return engine, output.getvalue()


def test_history_kept_across_turns_and_cleared(tmp_path):
    replies = [{"text": "one"}, {"text": "two"}, {"text": "three"}]
    engine, _ = run_session(tmp_path, replies, ["first", "second", "/clear", "third"])

    # system + user; then + assistant + user; then a fresh conversation again.
    assert engine.history_sizes == [2, 4, 2]
    assert engine.last_messages[-1].content == "third"


def test_second_turn_reuses_cached_prefix(tmp_path):
    replies = [{"text": "one"}, {"text": "two"}]
    engine = RecordingEngine(replies)
    settings = load_settings({"engine": "scripted", "sandbox": "none", "checkpoints": False})
    session = ChatSession(settings, tmp_path / "ws", engine, console=Console(file=io.StringIO()), read_line=lambda _: (_ for _ in ()).throw(EOFError))
    session.run()
    first = session.loop.continue_with("first")
    second = session.loop.continue_with("second")
    assert first.status == "answered"
    assert second.totals.usage.prompt_tokens_cached > 0


def test_model_command_without_workspace_history(tmp_path):
    _, output = run_session(tmp_path, [], ["/model", "/exit", "never sent"])
    assert "engine: scripted" in output
    assert "history: 0 messages" in output


def test_failed_command_keeps_session(tmp_path):
    # Without checkpoints the workspace has no git history, so /undo fails with a message.
    _, output = run_session(tmp_path, [], ["/undo", "/help"])
    assert "/undo failed:" in output
    assert "/exit" in output
