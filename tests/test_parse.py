"""Tool-call parsing: strict reading, safe repairs, refusals with messages, and the reply corpus."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.chat.messages import ToolCall, ToolSpec
from agent.chat.parse import example_call, parse_reply

STRING = '<|"|>'
CORPUS = Path(__file__).parent / "data" / "replies.jsonl"


def _schema(required: list[str], **types: str) -> dict:
    return {"type": "object", "properties": {k: {"type": v} for k, v in types.items()}, "required": required}


TOOLS = [
    ToolSpec("write_file", "Write a whole file.", _schema(["path", "content"], path="string", content="string")),
    ToolSpec("read_file", "Read a file.", _schema(["path"], path="string")),
    ToolSpec("run_command", "Run a shell command.", _schema(["command"], command="string", timeout="integer")),
]


def only_call(reply):
    assert reply.problems == []
    assert len(reply.calls) == 1
    return reply.calls[0]


# The ten cases every parser change must keep passing.


def test_native_call_content_is_exact():
    text = f'<|tool_call>call:write_file{{path:{STRING}hello.py{STRING},content:{STRING}print("hi")\n{STRING}}}<tool_call|>'
    reply = parse_reply(text, TOOLS, structured=[])
    call = only_call(reply)
    assert call.arguments == {"path": "hello.py", "content": 'print("hi")\n'}
    assert STRING not in call.arguments["content"]
    assert reply.content == ""
    assert reply.repaired == 0


def test_native_content_without_delimiters_is_repaired():
    text = f'<|tool_call>call:write_file{{path:{STRING}hello.py{STRING},content:print("hi")\nprint("bye")\n}}<tool_call|>'
    reply = parse_reply(text, TOOLS)
    call = only_call(reply)
    assert call.arguments == {"path": "hello.py", "content": 'print("hi")\nprint("bye")\n'}
    assert reply.repaired == 1


def test_json_unescaped_inner_quotes_are_repaired():
    arguments = '{"path": "app.py", "content": "print("hello")\\n"}'
    text = f'<tool_call>{{"name": "write_file", "arguments": {arguments}}}</tool_call>'
    reply = parse_reply(text, TOOLS)
    call = only_call(reply)
    assert call.arguments == {"path": "app.py", "content": 'print("hello")\n'}
    assert reply.repaired == 1


def test_json_call_streamed_in_chunks():
    chunks = ['<tool_call>{"name": "run_command", "arguments": {"command": "mkdir -p o', "ut/{a", ',b"}}</tool_call>']
    reply = parse_reply("".join(chunks), TOOLS)
    assert only_call(reply).arguments == {"command": "mkdir -p out/{a,b"}


@pytest.mark.parametrize(
    "text",
    [
        '{"name": "run_command", "arguments": {"command": "ls -la"}}',
        'Listing:\n```json\n{"name": "run_command", "arguments": {"command": "ls -la"}}\n```\n',
    ],
)
def test_bare_and_fenced_json_calls(text):
    reply = parse_reply(text, TOOLS)
    assert only_call(reply).arguments == {"command": "ls -la"}
    assert "```" not in reply.content
    assert "run_command" not in reply.content


def test_duplicate_calls_are_flagged():
    call = f"<|tool_call>call:read_file{{path:{STRING}a.py{STRING}}}<tool_call|>"
    reply = parse_reply(call + call, TOOLS)
    assert [c.arguments for c in reply.calls] == [{"path": "a.py"}, {"path": "a.py"}]
    assert reply.duplicates == [1]


def test_empty_thoughts_before_and_between_calls():
    empty = "<|channel>thought\n<channel|>"
    read = f"<|tool_call>call:read_file{{path:{STRING}a.py{STRING}}}<tool_call|>"
    run = f"<|tool_call>call:run_command{{command:{STRING}ls{STRING}}}<tool_call|>"
    reply = parse_reply(empty + read + empty + run, TOOLS)
    assert [c.name for c in reply.calls] == ["read_file", "run_command"]
    assert reply.content == ""
    assert reply.thinking == ""


def test_leaked_thought_is_not_content():
    text = "thought\nThe user wants a.py, so I read it.<channel|>Reading a.py now."
    reply = parse_reply(text, TOOLS)
    assert reply.content == "Reading a.py now."
    assert reply.thinking == "The user wants a.py, so I read it."


def test_gemma3_history_renders_without_error():
    from agent.chat.gemma3 import Gemma3Format
    from agent.chat.messages import Message

    messages = [
        Message("system", "You are a coding agent."),
        Message("user", "Create hello.py."),
        Message("assistant", "", tool_calls=[ToolCall("write_file", {"path": "hello.py", "content": "x"}, "c1")]),
        Message("tool", "Wrote hello.py.", name="write_file", tool_call_id="c1"),
    ]
    prompt = Gemma3Format().render(messages, TOOLS)
    assert prompt.startswith("<bos><start_of_turn>user\nYou are a coding agent.")
    assert prompt.endswith("<start_of_turn>model\n")


def test_bos_is_not_doubled():
    from agent.chat.render import tokenize_prompt

    def fake_tokenize(text: str) -> list[int]:
        # Like llama.cpp with add_bos and special tokens: a BOS of its own, and "<bos>" text parsed to id 2.
        tokens = [2]
        for word in text.replace("<bos>", " <bos> ").split():
            tokens.append(2 if word == "<bos>" else 100 + len(word))
        return tokens

    tokens = tokenize_prompt("<bos><start_of_turn>user\nhi<end_of_turn>", fake_tokenize, bos_token_id=2)
    assert tokens.count(2) == 1
    assert tokens[0] == 2


def test_reply_cut_off_inside_content_runs_nothing():
    text = f"<|tool_call>call:write_file{{path:{STRING}big.py{STRING},content:{STRING}import os\n\ndef main("
    reply = parse_reply(text, TOOLS, truncated=True)
    assert reply.calls == []
    assert len(reply.problems) == 1
    message = reply.problems[0].message
    assert "token limit" in message
    assert "split" in message
    assert "write_file" in message


# Further behaviour


def test_unknown_tool_is_refused_with_tool_list():
    reply = parse_reply(f"<|tool_call>call:delete_all{{path:{STRING}/{STRING}}}<tool_call|>", TOOLS)
    assert reply.calls == []
    assert "delete_all" in reply.problems[0].message
    assert "read_file, run_command, write_file" in reply.problems[0].message


def test_problem_message_shows_one_example_call():
    reply = parse_reply(f"<|tool_call>call:write_file{{path:{STRING}a.py{STRING}}}<tool_call|>", TOOLS)
    message = reply.problems[0].message
    assert "'content' is missing" in message
    assert message.count("<|tool_call>") == 1
    assert "call:write_file{content:" in message


@pytest.mark.parametrize("syntax", ["gemma4", "json"])
@pytest.mark.parametrize("tool", TOOLS, ids=lambda tool: tool.name)
def test_copied_example_runs_nothing(tool, syntax):
    example = example_call(tool, syntax)
    reply = parse_reply(f"Here it is: {example}", TOOLS)
    assert reply.calls == []
    assert reply.problems


def test_problem_messages_never_parse_as_calls():
    broken = [
        f"<|tool_call>call:write_file{{path:{STRING}a.py{STRING}}}<tool_call|>",
        '<tool_call>{"name": "run_command", "arguments": {"command": 5, }}</tool_call>',
        "<|tool_call>call:write_file{path:a,content:b,content:c}<tool_call|>",
    ]
    for text in broken:
        for problem in parse_reply(text, TOOLS).problems:
            assert parse_reply(problem.message, TOOLS).calls == []


def test_ambiguous_unquoted_values_are_refused():
    text = "<|tool_call>call:write_file{path:a.py,content:foo,content:bar}<tool_call|>"
    reply = parse_reply(text, TOOLS)
    assert reply.calls == []
    assert "another argument" in reply.problems[0].message


def test_missing_end_marker_unless_truncated():
    text = f"<|tool_call>call:read_file{{path:{STRING}a.py{STRING}}}"
    assert only_call(parse_reply(text, TOOLS)).arguments == {"path": "a.py"}
    assert parse_reply(text, TOOLS, truncated=True).calls == []


def test_structured_call_not_doubled_by_text():
    structured = [ToolCall("read_file", {"path": "a.py"}, "server_1")]
    text = '<tool_call>{"name": "read_file", "arguments": {"path": "a.py"}}</tool_call>'
    reply = parse_reply(text, TOOLS, structured=structured)
    assert [c.id for c in reply.calls] == ["server_1"]


def test_thought_text_never_reaches_content():
    text = "<|channel>thought\nplan: read it<channel|>Done.<turn|>"
    reply = parse_reply(text, TOOLS)
    assert reply.content == "Done."
    assert reply.thinking == "plan: read it"


def test_invented_tool_response_is_dropped():
    call = f"<|tool_call>call:read_file{{path:{STRING}a.py{STRING}}}<tool_call|>"
    invented = f"<|tool_response>response:read_file{{value:{STRING}secret{STRING}}}<tool_response|>"
    reply = parse_reply(call + invented, TOOLS)
    assert len(reply.calls) == 1
    assert "secret" not in reply.content


# The reply corpus


def _corpus() -> list[dict]:
    return [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]


def _outcome(case: dict) -> str:
    structured = [ToolCall(c["name"], c["arguments"], c.get("id", "")) for c in case.get("structured", [])]
    reply = parse_reply(case["text"], TOOLS, structured=structured, truncated=case.get("truncated", False))
    calls = [{"name": c.name, "arguments": c.arguments} for c in reply.calls]
    if reply.problems:
        assert calls == [], f"{case['name']}: a reply with problems also ran {calls}"
        assert all(p.message.strip() for p in reply.problems), f"{case['name']}: empty problem message"
        if "message" in case:
            assert case["message"] in reply.problems[0].message, f"{case['name']}: {reply.problems[0].message}"
        return "refused"
    assert calls == case["calls"], f"{case['name']}: {calls}"
    return "repaired" if reply.repaired else "exact"


def test_reply_corpus_tally():
    tally = {"cases": 0, "exact": 0, "repaired": 0, "refused": 0, "crashes": 0}
    mismatches = []
    for case in _corpus():
        tally["cases"] += 1
        try:
            outcome = _outcome(case)
        except AssertionError as error:
            mismatches.append(str(error))
            continue
        except Exception as error:  # a crash is what this test counts
            tally["crashes"] += 1
            mismatches.append(f"{case['name']}: crashed with {error!r}")
            continue
        tally[outcome] += 1
        if outcome != case["expect"]:
            mismatches.append(f"{case['name']}: expected {case['expect']}, got {outcome}")
    print(
        f"\nreply corpus: {tally['cases']} cases, {tally['exact']} parsed exactly, {tally['repaired']} repaired, "
        f"{tally['refused']} refused with a message, {tally['crashes']} crashes"
    )
    assert tally["crashes"] == 0
    assert mismatches == []


def test_cut_off_replies_run_only_whole_calls():
    for case in _corpus():
        text = case["text"]
        whole = [call.key() for call in parse_reply(text, TOOLS).calls]
        for end in range(len(text) + 1):
            reply = parse_reply(text[:end], TOOLS, truncated=True)
            for call in reply.calls:
                assert call.key() in whole, f"{case['name']} cut at {end} ran {call.key()}"


# Streaming display


def _stream(chunks: list[str]) -> dict[str, str]:
    from agent.chat.stream import ReplyStream

    shown: dict[str, str] = {"text": "", "thinking": "", "call": ""}
    stream = ReplyStream(lambda kind, text: shown.__setitem__(kind, shown[kind] + text))
    for chunk in chunks:
        stream.push(chunk)
    stream.close()
    assert stream.text == "".join(chunks)
    return shown


def test_stream_sorts_kinds_at_every_split():
    call = f"<|tool_call>call:read_file{{path:{STRING}a.py{STRING}}}<tool_call|>"
    reply = "<|channel>thought\nplan it<channel|>Reading." + call + "Done.<turn|>"
    whole = _stream([reply])
    assert whole == {"text": "Reading.Done.", "thinking": "plan it", "call": call}
    for cut in range(1, len(reply)):
        assert _stream([reply[:cut], reply[cut:]]) == whole, cut
    assert _stream(list(reply)) == whole


def test_stream_json_call_in_chunks():
    chunks = ['Sure. <tool_call>{"name": "run_command", "arguments": {"command": "mkdir -p o', "ut/{a", ',b"}}</tool', "_call> ok"]
    shown = _stream(chunks)
    assert shown["text"] == "Sure.  ok"
    assert shown["call"].startswith("<tool_call>{")
    assert parse_reply("".join(chunks), TOOLS).calls[0].arguments == {"command": "mkdir -p out/{a,b"}


def test_stream_shows_text_without_waiting():
    from agent.chat.stream import ReplyStream

    shown: list[tuple[str, str]] = []
    stream = ReplyStream(lambda kind, text: shown.append((kind, text)))
    stream.push("Hello wor")
    assert shown == [("text", "Hello wor")]
    stream.push("ld <|tool")
    assert shown[-1] == ("text", "ld ")


def test_mutated_replies_never_crash():
    import random

    generator = random.Random(3)
    texts = [case["text"] for case in _corpus()]
    pieces = [STRING, '"', "'", "{", "}", ",", ":", "\n", "<|tool_call>", "<tool_call|>", "<tool_call>", "</tool_call>",
              "<|channel>", "<channel|>", "\\", "path", "content", "```", "call:"]
    for _ in range(3000):
        text = generator.choice(texts)
        for _ in range(generator.randint(1, 4)):
            at = generator.randint(0, len(text))
            if generator.random() < 0.5:
                text = text[:at] + generator.choice(pieces) + text[at:]
            else:
                text = text[:at] + text[at + generator.randint(1, 5):]
        for truncated in (False, True):
            reply = parse_reply(text, TOOLS, truncated=truncated)
            assert all(isinstance(call.arguments, dict) for call in reply.calls)


def test_cut_off_right_after_start_marker():
    call = '<tool_call>{"name": "read_file", "arguments": {"path": "a.py"}}</tool_call>'
    reply = parse_reply(call + "\n<tool_call>\n", TOOLS, truncated=True)
    assert len(reply.calls) == 1
    assert reply.problems == []


def test_identical_structured_calls_both_kept():
    write = ToolCall("write_file", {"path": "a.txt", "content": "x\n"})
    reply = parse_reply("", TOOLS, structured=[write, write])
    assert len(reply.calls) == 2
    assert reply.duplicates == [1]
