"""The incremental call constraint: what it accepts, what it rejects, and what it costs."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from agent.chat.constrain import Gemma4CallConstraint, JsonCallConstraint
from agent.chat.messages import ToolSpec
from agent.chat.parse import parse_reply

STRING = '<|"|>'
END = "<tool_call|>"
CORPUS = Path(__file__).parent / "data" / "replies.jsonl"

TOOLS = [
    ToolSpec(
        "write_file",
        "Write a whole file.",
        {
            "type": "object",
            "properties": {"path": {"type": "string"}, "content": {"type": "string"}},
            "required": ["path", "content"],
        },
    ),
    ToolSpec("read_file", "Read a file.", {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}),
    ToolSpec(
        "run_command",
        "Run a shell command.",
        {
            "type": "object",
            "properties": {
                "command": {"type": "string"},
                "timeout": {"type": "integer"},
                "quiet": {"type": "boolean"},
                "env": {"type": "object"},
                "args": {"type": "array", "items": {"type": "string"}},
                "ratio": {"type": "number"},
            },
            "required": ["command"],
        },
    ),
]


def feed_all(constraint, pieces) -> int | None:
    """Feed pieces; return the index of the first rejected piece, or None when all were accepted."""
    for index, piece in enumerate(pieces):
        if not constraint.accepts(piece):
            return index
        constraint.feed(piece)
    return None


# Gemma 4 native calls


def test_native_call_in_token_pieces():
    constraint = Gemma4CallConstraint(TOOLS)
    pieces = ["call", ":", "write", "_file", "{", "path", ":", STRING, "hello", ".py", STRING, ",", "content", ":",
              STRING, 'print("hi")', "\n", STRING, "}", END]
    assert feed_all(constraint, pieces) is None
    assert constraint.done


def test_native_call_one_character_at_a_time():
    text = f"call:run_command{{args:[{STRING}a{STRING}],command:{STRING}ls{STRING},env:{{X:{STRING}1{STRING}}},quiet:true,ratio:-0.5e3,timeout:30}}{END}"
    constraint = Gemma4CallConstraint(TOOLS)
    assert feed_all(constraint, list(text)) is None
    assert constraint.done


@pytest.mark.parametrize(
    "pieces",
    [
        ["call:delete_file{"],  # unknown tool
        ["call:read_file{mode:"],  # undeclared argument
        [f"call:read_file{{path:{STRING}a{STRING},path:"],  # repeated argument
        ["call:run_command{timeout:", STRING],  # a string where an integer is declared
        ["call:run_command{timeout:3x"],  # not a number
        [f"call:write_file{{path:{STRING}a{STRING}", "}"],  # closes before the required content
        [f"call:read_file{{path:{STRING}a{STRING}", " "],  # whitespace is not part of the syntax
        ["call:read_file{path:", '"a.py"'],  # ordinary quotes
        [f"call:read_file{{path:{STRING}a{STRING}}}", "<turn|>"],  # anything but the end marker
        [f"call:read_file{{path:{STRING}a{STRING}}}{END}", "x"],  # text after the call
    ],
)
def test_native_rejects(pieces):
    constraint = Gemma4CallConstraint(TOOLS)
    assert feed_all(constraint, pieces) == len(pieces) - 1


def test_string_allows_anything_but_terminator():
    constraint = Gemma4CallConstraint(TOOLS)
    constraint.feed(f"call:write_file{{path:{STRING}a{STRING},content:{STRING}")
    for text in ['<|"', "}<tool_call|>", '{"a": 1}', "<|", "\n\t<turn|>"]:
        assert constraint.accepts(text)
        constraint.feed(text)
    assert constraint.accepts(STRING + "}" + END)


def test_accepts_leaves_state_unchanged():
    constraint = Gemma4CallConstraint(TOOLS)
    constraint.feed("call:read_file{path:")
    assert constraint.accepts(STRING + "a.py")
    assert not constraint.accepts("}")
    constraint.feed(STRING)
    assert not constraint.done


def test_feed_rejects_invalid_piece():
    constraint = Gemma4CallConstraint(TOOLS)
    with pytest.raises(ValueError, match="cannot continue"):
        constraint.feed("call:nope{")


# JSON calls in tags


def test_json_call_streamed_in_chunks():
    constraint = JsonCallConstraint(TOOLS)
    chunks = ['\n{"name": "run_command", "arguments": {"command": "mkdir -p o', "ut/{a", ',b"}}\n</tool_call>']
    assert feed_all(constraint, chunks) is None
    assert constraint.done


def test_json_escapes_and_types():
    constraint = JsonCallConstraint(TOOLS)
    text = '{"name": "run_command", "arguments": {"command": "a\\nb \\"q\\" \\u00e9", "timeout": 5, "quiet": false, "args": ["x"]}}</tool_call>'
    assert feed_all(constraint, list(text)) is None
    assert constraint.done


@pytest.mark.parametrize(
    "text",
    [
        '{"name": "run_command", "arguments": {"command": "a\nb"}}',  # raw newline inside a JSON string
        '{"arguments": {}}',  # the name must come first
        '{"name": "run_command", "arguments": {"timeout": 5}}',  # required command missing
        '{"name": "run_command", "arguments": {"command": "ls", "timeout": "5"}}',  # string for an integer
        '{"name": "run_command", "arguments": {"command": "a\\q"}}',  # invalid escape
    ],
)
def test_json_rejects(text):
    constraint = JsonCallConstraint(TOOLS)
    assert feed_all(constraint, list(text)) is not None


# Agreement with the parser


def _corpus_calls(marker: str, end: str) -> list[str]:
    texts = []
    for line in CORPUS.read_text(encoding="utf-8").splitlines():
        case = json.loads(line)
        text = case["text"]
        # The constraint admits no whitespace between native tokens, so the spaced variant is left out.
        canonical = "spaces" not in case["name"]
        if canonical and case["expect"] == "exact" and text.startswith(marker) and text.endswith(end) and text.count(marker) == 1:
            texts.append(text[len(marker):])
    return texts


def test_constraint_accepts_corpus_native_calls_and_parser_agrees():
    texts = _corpus_calls("<|tool_call>", END)
    assert texts
    for text in texts:
        constraint = Gemma4CallConstraint(TOOLS)
        assert feed_all(constraint, list(text)) is None, text
        assert constraint.done
        assert parse_reply("<|tool_call>" + text, TOOLS).problems == []


def test_parser_reads_what_constraint_accepts():
    text = f'call:write_file{{content:{STRING}a "q" }} <|"x{STRING},path:{STRING}p.py{STRING}}}{END}'
    constraint = Gemma4CallConstraint(TOOLS)
    assert feed_all(constraint, list(text)) is None
    reply = parse_reply("<|tool_call>" + text, TOOLS)
    assert reply.calls[0].arguments == {"content": 'a "q" } <|"x', "path": "p.py"}
    assert reply.repaired == 0


# Cost


def test_long_string_is_cheap_to_check():
    content = 'x = "a"  # a line of code\n' * 800  # about 20 kB
    escaped = json.dumps(content)[1:-1]
    results = {}
    for name, constraint, prefix, text, suffix in [
        ("gemma4", Gemma4CallConstraint(TOOLS), f"call:write_file{{path:{STRING}a.py{STRING},content:{STRING}", content, f"{STRING}}}{END}"),
        ("json", JsonCallConstraint(TOOLS), '{"name": "write_file", "arguments": {"path": "a.py", "content": "', escaped, '"}}</tool_call>'),
    ]:
        pieces = [text[i:i + 4] for i in range(0, len(text), 4)]
        constraint.feed(prefix)
        started = time.perf_counter()
        for piece in pieces:
            assert constraint.accepts(piece)
            constraint.feed(piece)
        results[name] = time.perf_counter() - started
        constraint.feed(suffix)
        assert constraint.done
    print(f"\nchecking a {len(content)}-character string in 4-character pieces: "
          + ", ".join(f"{name} {seconds * 1000:.1f} ms" for name, seconds in results.items()))
    assert max(results.values()) < 0.25


PIECES = [
    STRING, '"', "'", "{", "}", "[", "]", ",", ":", "\n", " ", "<|tool_call>", END, "</tool_call>", "\\", "\\n",
    "\\u00e9", "path", "content", "command", "timeout", "quiet", "env", "args", "ratio", "call:", "write_file",
    "read_file", "run_command", "-1", "2", "true", "false", "null", "x", "<", "|", ".", "e", "X",
    '{"name": "', '", "arguments": {',
]


ALPHABET = [*PIECES, *(chr(code) for code in range(32, 127))]


def _random_call(constraint, generator) -> str:
    """Walk the constraint with random accepted pieces; fail when a state accepts no piece at all."""
    text = ""
    for _ in range(300):
        piece = next((p for p in (generator.choice(PIECES) for _ in range(8)) if constraint.accepts(p)), None)
        if piece is None:
            accepted = [p for p in ALPHABET if constraint.accepts(p)]
            assert accepted, f"dead end after {text!r}"
            piece = generator.choice(accepted)
        constraint.feed(piece)
        text += piece
        if constraint.done:
            break
    return text


@pytest.mark.parametrize("constraint_class, start", [(Gemma4CallConstraint, "<|tool_call>"), (JsonCallConstraint, "<tool_call>")])
def test_parser_reads_every_completed_call(constraint_class, start):
    import random

    generator = random.Random(7)
    completed = 0
    for _ in range(400):
        constraint = constraint_class(TOOLS)
        text = _random_call(constraint, generator)
        if not constraint.done:
            continue
        completed += 1
        reply = parse_reply(start + text, TOOLS)
        assert reply.problems == [], text
        assert len(reply.calls) == 1, text
        assert reply.repaired == 0, text
    assert completed >= 20


def test_no_comma_when_no_key_is_left():
    constraint = JsonCallConstraint(TOOLS)
    constraint.feed('{"name": "read_file", "arguments": {"path": "a.py"')
    assert not constraint.accepts(",")
    assert constraint.accepts("}")


def test_endless_whitespace_between_tokens_is_refused():
    from agent.chat.constrain import MAX_BLANK_RUN, JsonCallConstraint
    from agent.chat.messages import ToolSpec

    tool = ToolSpec("list_files", "List files", {"type": "object", "properties": {"path": {"type": "string"}}, "required": []})
    constraint = JsonCallConstraint([tool])
    constraint.feed('{"name": "list_files", "arguments": {}}')

    fed = 0
    while constraint.accepts("\n"):
        constraint.feed("\n")
        fed += 1
    assert fed == MAX_BLANK_RUN
    assert constraint.accepts("</tool_call>")
