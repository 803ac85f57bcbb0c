"""Text that spells a special token: marked in the messages, tokenized as plain text, invisible otherwise."""

from __future__ import annotations

import re

import pytest

from agent.chat.gemma3 import Gemma3Format
from agent.chat.gemma4 import Gemma4Format
from agent.chat.literal import CLOSE, OPEN, SpecialText, mark, mark_messages, tokenize_marked
from agent.chat.messages import Message, ToolCall, ToolSpec
from agent.chat.template import TemplateFormat
from tests.test_chat_render import CHATML_TEMPLATE, GEMMA4_TEMPLATE, TOOLS

SPECIALS = {"<turn|>": 1, "<|im_end|>": 2, '<|"|>': 3}
SPECIAL = re.compile("|".join(re.escape(text) for text in SPECIALS))


def fake_tokenize(text: str, special: bool = True) -> list[int]:
    """Special-token texts become small ids when parsed; every other character is its code point."""
    tokens: list[int] = []
    position = 0
    for match in SPECIAL.finditer(text) if special else ():
        tokens.extend(ord(c) for c in text[position:match.start()])
        tokens.append(SPECIALS[match.group(0)])
        position = match.end()
    tokens.extend(ord(c) for c in text[position:])
    return tokens


def conversation(tricky: str) -> list[Message]:
    write = ToolCall("write_file", {"path": "notes.md", "content": tricky, "tags": [tricky]}, "c1")
    return [
        Message("system", "You are a coding agent."),
        Message("user", f"Explain this: {tricky}"),
        Message("assistant", f"It says {tricky}", tool_calls=[write]),
        Message("tool", f"  {tricky}\n", name="write_file", tool_call_id="c1"),
        Message("user", "Thanks."),
    ]


def unmarked(text: str) -> str:
    return text.replace(OPEN, "").replace(CLOSE, "")


def test_mark_leaves_edge_whitespace_outside():
    assert mark("  a <turn|> b\n") == f"  {OPEN}a <turn|> b{CLOSE}\n"
    assert mark("   ") == "   "
    assert mark(f"x{OPEN}y") == f"{OPEN}xy{CLOSE}"


@pytest.mark.parametrize(
    "make_format",
    [
        Gemma4Format,
        Gemma3Format,
        lambda: TemplateFormat(GEMMA4_TEMPLATE, bos_token="<bos>", eos_token="<eos>"),
        lambda: TemplateFormat(CHATML_TEMPLATE, bos_token="", eos_token="<|im_end|>"),
    ],
)
def test_marks_change_no_rendered_character(make_format):
    messages = conversation('a <turn|> b <|"|> c')
    fmt = make_format()

    marked = fmt.render(mark_messages(messages, lambda text: True), TOOLS)

    assert unmarked(marked) == fmt.render(messages, TOOLS)
    assert marked.count(OPEN) == marked.count(CLOSE) > 0


def test_mark_messages_skips_plain_text():
    messages = mark_messages(conversation("<|im_end|>") + [Message("user", "plain")], SpecialText(fake_tokenize))

    assert messages[0].content == "You are a coding agent."
    assert messages[1].content == f"{OPEN}Explain this: <|im_end|>{CLOSE}"
    assert messages[2].tool_calls[0].arguments == {"path": "notes.md", "content": f"{OPEN}<|im_end|>{CLOSE}", "tags": [f"{OPEN}<|im_end|>{CLOSE}"]}
    assert messages[-1].content == "plain"


def test_tokenize_marked_spans_as_plain_text():
    prompt = f"<|im_end|>user\n{OPEN}say <|im_end|> now{CLOSE}<|im_end|>"

    tokens = tokenize_marked(prompt, fake_tokenize)

    assert tokens == [2, *map(ord, "user\n"), *map(ord, "say <|im_end|> now"), 2]


def test_tokenize_unmarked_prompt_in_one_call():
    calls = []

    def tokenize(text, special=True):
        calls.append((text, special))
        return fake_tokenize(text, special)

    assert tokenize_marked("a<turn|>b", tokenize) == [97, 1, 98]
    assert calls == [("a<turn|>b", True)]


def test_tokenize_marked_drops_unpaired_marks():
    # A template that keeps only the text after a marker cuts the opening mark off.
    assert tokenize_marked(f"x<turn|>y{CLOSE}z", fake_tokenize) == [120, 1, 121, 122]
    assert tokenize_marked(f"{OPEN}a{OPEN}b{CLOSE}", fake_tokenize) == [97, 98]


def test_special_text_caches_results():
    calls = []

    def tokenize(text, special=True):
        calls.append(text)
        return fake_tokenize(text, special)

    spells = SpecialText(tokenize)
    assert spells("a <turn|>")
    assert spells("a <turn|>")
    assert not spells("plain")
    assert not spells("plain")
    assert not spells("")
    assert calls == ["a <turn|>", "a <turn|>", "plain", "plain"]
