"""Text that spells a special token: marked in the messages, tokenized as plain text, invisible otherwise."""

from __future__ import annotations

import re

import pytest

from agent.chat.gemma3 import Gemma3Format
from agent.chat.gemma4 import Gemma4Format
from agent.chat.literal import Marks, SpecialText, mark_messages, tokenize_marked
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


MARKS = Marks("\ue000", "\ue001")


def unmarked(text: str, marks: Marks) -> str:
    return text.replace(marks.open, "").replace(marks.close, "")


def always(text: str) -> bool:
    return bool(text)


def test_wrap_leaves_edge_whitespace_outside():
    assert MARKS.wrap("  a <turn|> b\n") == "  \ue000a <turn|> b\ue001\n"
    assert MARKS.wrap("   ") == "   "
    assert MARKS.wrap("") == ""


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
    marked, marks = mark_messages(messages, always)

    rendered = fmt.render(marked, TOOLS)

    assert unmarked(rendered, marks) == fmt.render(messages, TOOLS)
    assert rendered.count(marks.open) == rendered.count(marks.close) > 0


def test_mark_messages_skips_plain_text():
    messages, marks = mark_messages(conversation("<|im_end|>") + [Message("user", "plain")], SpecialText(fake_tokenize))

    assert messages[0].content == "You are a coding agent."
    assert messages[1].content == f"{marks.open}Explain this: <|im_end|>{marks.close}"
    assert messages[2].tool_calls[0].arguments == {
        "path": "notes.md",
        "content": f"{marks.open}<|im_end|>{marks.close}",
        "tags": [f"{marks.open}<|im_end|>{marks.close}"],
    }
    assert messages[-1].content == "plain"


def test_plain_conversation_gets_no_marks():
    messages = conversation("nothing special \ue000 here")

    marked, marks = mark_messages(messages, SpecialText(fake_tokenize))

    assert marks is None
    assert marked == messages


def test_marks_avoid_used_characters():
    # Icon fonts put their glyphs in the private-use range, so a file may contain the usual marks.
    messages = [Message("user", "icon \ue000\ue001 and <turn|>"), Message("user", "<turn|> \ue002")]

    marked, marks = mark_messages(messages, SpecialText(fake_tokenize))
    tokens = tokenize_marked("<turn|>" + marked[0].content + "<turn|>" + marked[1].content, fake_tokenize, marks)

    assert {marks.open, marks.close}.isdisjoint("\ue000\ue001\ue002")
    assert tokens == [1, *map(ord, "icon \ue000\ue001 and <turn|>"), 1, *map(ord, "<turn|> \ue002")]


def test_tokenize_marked_spans_as_plain_text():
    prompt = "<|im_end|>user\n\ue000say <|im_end|> now\ue001<|im_end|>"

    tokens = tokenize_marked(prompt, fake_tokenize, MARKS)

    assert tokens == [2, *map(ord, "user\n"), *map(ord, "say <|im_end|> now"), 2]


def test_tokenize_unmarked_prompt_in_one_call():
    calls = []

    def tokenize(text, special=True):
        calls.append((text, special))
        return fake_tokenize(text, special)

    assert tokenize_marked("a<turn|>b\ue000", tokenize, None) == [97, 1, 98, 0xE000]
    assert calls == [("a<turn|>b\ue000", True)]


def test_tokenize_marked_drops_unpaired_marks():
    # A template that keeps only the text after a marker cuts the opening mark off. The other spans stay plain.
    prompt = "x<turn|>y\ue001z \ue000<turn|>\ue001"

    assert tokenize_marked(prompt, fake_tokenize, MARKS) == [120, 1, 121, 122, 32, *map(ord, "<turn|>")]
    assert tokenize_marked("\ue000a\ue000b<turn|>\ue001", fake_tokenize, MARKS) == [97, *map(ord, "b<turn|>")]


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
