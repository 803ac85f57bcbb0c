"""Blocks mode: write_file names the file, the next reply holds its content as a code block."""

from __future__ import annotations

import pytest

from agent.blocks import extract_file_content, has_unclosed_fence
from agent.config import Settings
from agent.engines.scripted import ScriptedEngine
from agent.events import EventBus
from agent.loop import Loop
from agent.sandbox import Sandbox
from agent.tool import ToolContext, ToolSet
from agent.workspace import Workspace
from tools.files import WriteFileFromBlock
from tools.finish import Finish

PLAN = {"text": "1. Write page.html"}
PAGE = "<!DOCTYPE html>\n<p id=\"x\">hi</p>\n"


def test_longest_fenced_block_is_the_content():
    reply = f"Here is the file:\n```html\n{PAGE}```\nAnd a note:\n```\nsmall\n```\n"

    assert extract_file_content(reply) == PAGE


def test_reply_without_fence_is_taken_whole():
    assert extract_file_content("\nprint('hi')\n\n") == "print('hi')\n"


def test_unclosed_fence_and_empty_reply_write_nothing():
    assert extract_file_content("```python\nprint('hi')\n") is None
    assert extract_file_content("  \n") is None


def test_empty_code_block_writes_nothing():
    assert extract_file_content("Here:\n```html\n```\n") is None
    assert extract_file_content("```\n  \n```\n```python\nx = 1\n```\n") == "x = 1\n"


def test_unclosed_fence_detection():
    assert has_unclosed_fence("```html\n<p>cut off")
    assert has_unclosed_fence("```js\nlet a;\n```\nand\n```js\nlet b;")
    assert not has_unclosed_fence("```html\n```\n")
    assert not has_unclosed_fence("Use ``` fences.")


def test_thoughts_are_not_content():
    reply = "<|channel>thought\nI should write it\n<channel|>```\nx = 1\n```"

    assert extract_file_content(reply) == "x = 1\n"


def run_blocks(tmp_path, replies):
    workspace = Workspace(tmp_path / "ws")
    workspace.create()
    context = ToolContext(workspace, Sandbox(workspace.root), Settings())
    events = []
    loop = Loop(ScriptedEngine(replies), ToolSet([WriteFileFromBlock(), Finish()]), context, EventBus(events.append))
    return loop.run("Write page.html"), workspace, events


def test_loop_writes_block_content_under_called_path(tmp_path):
    replies = [
        PLAN,
        {"tool_calls": [{"name": "write_file", "arguments": {"path": "page.html"}}]},
        {"text": f"Sure! Here it is:\n```html\n{PAGE}```"},
        {"tool_calls": [{"name": "finish", "arguments": {"summary": "done"}}]},
    ]

    result, workspace, events = run_blocks(tmp_path, replies)

    assert result.status == "finished"
    assert (workspace.root / "page.html").read_text() == PAGE
    assert result.totals.files_written == ["page.html"]
    assert [p.name for p in workspace.root.iterdir() if not p.name.startswith(".")] == ["page.html"]
    results = [e.data for e in events if e.kind == "tool_result"]
    assert results[0]["display"] == "waiting for the content of page.html"
    assert results[1]["changed"] == ["page.html"]


def test_declaration_asks_for_path_only():
    spec = WriteFileFromBlock().spec

    assert list(spec.parameters["properties"]) == ["path"]


@pytest.mark.parametrize(
    ("reply", "message"),
    [("```html\n<p>cut off", "was never closed"), ("```html\n```", "held no content for page.html")],
)
def test_block_without_content_is_reported(tmp_path, reply, message):
    replies = [
        PLAN,
        {"tool_calls": [{"name": "write_file", "arguments": {"path": "page.html"}}]},
        {"text": reply},
        {"tool_calls": [{"name": "finish", "arguments": {"summary": "done"}}]},
    ]

    result, workspace, _ = run_blocks(tmp_path, replies)

    assert not (workspace.root / "page.html").exists()
    assert any(message in m.content for m in result.messages if m.role == "user")


def test_decoder_ends_reply_when_code_block_closes():
    from types import SimpleNamespace

    from agent.engines.decode import Decoder

    chat_format = SimpleNamespace(stop=["<|im_end|>"], call_start="<tool_call>", call_end="</tool_call>")
    decoder = Decoder(None, None, None, chat_format, [], tool_choice="none", thinking=False, max_tokens=100,
                      on_delta=None, end_after_code_block=True)
    pieces = ["Here it is:\n", "```python\n", "x = 1\n", "```", "\n", "Explanation that never ends"]
    closed_at = None
    for index, piece in enumerate(pieces):
        decoder.text += piece
        if "\n" in piece and decoder._code_block_closed():
            closed_at = index
            break

    assert closed_at == 4


def test_call_given_as_content_is_not_written(tmp_path):
    replies = [
        PLAN,
        {"tool_calls": [{"name": "write_file", "arguments": {"path": "page.html"}}]},
        {"text": '<tool_call>{"name": "finish", "arguments": {"summary": "x"}}</tool_call>'},
        {"tool_calls": [{"name": "finish", "arguments": {"summary": "done"}}]},
    ]

    result, workspace, _ = run_blocks(tmp_path, replies)

    assert not (workspace.root / "page.html").exists()
    assert any("nothing was written" in m.content for m in result.messages if m.role == "user")
