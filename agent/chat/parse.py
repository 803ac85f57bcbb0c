"""One parser entry for everything a reply can hold: native Gemma 4 calls, JSON calls, structured calls.

Strict parsing first. A call that cannot be read is never run: it becomes a `CallProblem` whose
message tells the model what was wrong.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from agent.chat.messages import ToolCall, ToolSpec

GEMMA4_CALL_START = "<|tool_call>"
GEMMA4_CALL_END = "<tool_call|>"
GEMMA4_STRING = '<|"|>'
JSON_CALL_START = "<tool_call>"
JSON_CALL_END = "</tool_call>"

_THOUGHT = re.compile(r"<\|channel>thought\n?(.*?)(<channel\|>|$)", re.DOTALL)
_GEMMA4_CALL = re.compile(re.escape(GEMMA4_CALL_START) + r"(.*?)(" + re.escape(GEMMA4_CALL_END) + r"|$)", re.DOTALL)
_JSON_TAGGED = re.compile(re.escape(JSON_CALL_START) + r"(.*?)(" + re.escape(JSON_CALL_END) + r"|$)", re.DOTALL)
_FENCED_JSON = re.compile(r"```(?:json)?\s*\n(\{.*?\})\s*\n```", re.DOTALL)


@dataclass
class CallProblem:
    """A call in the reply that was not run, with the message the model gets about it."""

    message: str
    raw: str = ""


@dataclass
class ParsedReply:
    """What a reply holds once markup is taken apart."""

    content: str = ""
    thinking: str = ""
    calls: list[ToolCall] = field(default_factory=list)
    problems: list[CallProblem] = field(default_factory=list)
    repaired: int = 0


def parse_reply(
    text: str,
    tools: Sequence[ToolSpec],
    *,
    structured: Sequence[ToolCall] = (),
    truncated: bool = False,
) -> ParsedReply:
    """Parse a raw reply into visible content, thoughts, calls and problems.

    `structured` holds calls an HTTP server already returned as objects; `truncated` says the reply
    stopped at the token limit, so an unclosed call at its end is refused instead of run.
    """
    thinking = "\n".join(m.group(1).strip() for m in _THOUGHT.finditer(text)).strip()
    body = _THOUGHT.sub("", text)
    known = {tool.name for tool in tools}
    result = ParsedReply(thinking=thinking)

    for call in structured:
        _accept(result, call.name, call.arguments, known, raw=json.dumps(call.to_dict()))

    body = _take_gemma4_calls(body, result, known, truncated)
    body = _take_json_calls(body, result, known, truncated)
    result.content = body.strip()
    return result


def _take_gemma4_calls(body: str, result: ParsedReply, known: set[str], truncated: bool) -> str:
    for match in _GEMMA4_CALL.finditer(body):
        raw, closed = match.group(1), bool(match.group(2))
        if not closed and truncated:
            result.problems.append(CallProblem(_truncated_message(), raw))
            continue
        try:
            name, arguments = parse_gemma4_call(raw)
        except ValueError as error:
            result.problems.append(CallProblem(f"The tool call could not be read: {error}.", raw))
            continue
        _accept(result, name, arguments, known, raw)
    return _GEMMA4_CALL.sub("", body)


def _take_json_calls(body: str, result: ParsedReply, known: set[str], truncated: bool) -> str:
    for pattern in (_JSON_TAGGED, _FENCED_JSON):
        pieces = []
        for match in pattern.finditer(body):
            raw = match.group(1)
            closed = pattern is _FENCED_JSON or bool(match.group(2))
            if not closed and truncated:
                result.problems.append(CallProblem(_truncated_message(), raw))
                continue
            pieces.append(raw)
        for raw in pieces:
            _accept_json(raw, result, known)
        if pieces:
            body = pattern.sub("", body)
    stripped = body.strip()
    if stripped.startswith("{") and stripped.endswith("}") and '"name"' in stripped:
        if _accept_json(stripped, result, known, quiet=True):
            return ""
    return body


def _accept_json(raw: str, result: ParsedReply, known: set[str], quiet: bool = False) -> bool:
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as error:
        if not quiet:
            result.problems.append(CallProblem(f"The tool call is not valid JSON: {error.msg}.", raw))
        return False
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        if not quiet:
            result.problems.append(CallProblem('The tool call needs a "name" and an "arguments" object.', raw))
        return False
    arguments = data.get("arguments", data.get("parameters", {}))
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except json.JSONDecodeError:
            result.problems.append(CallProblem("The tool call arguments are not a JSON object.", raw))
            return False
    _accept(result, data["name"], arguments, known, raw)
    return True


def _accept(result: ParsedReply, name: str, arguments: object, known: set[str], raw: str) -> None:
    if name not in known:
        listed = ", ".join(sorted(known))
        result.problems.append(CallProblem(f"There is no tool named {name!r}. The tools are: {listed}.", raw))
        return
    if not isinstance(arguments, dict):
        result.problems.append(CallProblem(f"The arguments of {name} must be an object.", raw))
        return
    result.calls.append(ToolCall(name, arguments, id=f"call_{len(result.calls) + 1}"))


def _truncated_message() -> str:
    return (
        "Your reply reached the token limit inside a tool call, so the call was not run. "
        "Send the call again with less content, or split the file into smaller parts."
    )


def parse_gemma4_call(raw: str) -> tuple[str, dict]:
    """Parse the inside of `<|tool_call>...<tool_call|>`: `call:NAME{key:value,...}`."""
    raw = raw.strip()
    if not raw.startswith("call:"):
        raise ValueError("a call starts with call:NAME")
    brace = raw.find("{")
    if brace < 0:
        raise ValueError("the arguments must follow the name in braces")
    name = raw[len("call:"):brace].strip()
    value, end = _Gemma4Reader(raw, brace).read_value()
    if raw[end:].strip():
        raise ValueError(f"unexpected text after the arguments: {raw[end:].strip()[:40]!r}")
    return name, value


class _Gemma4Reader:
    """A strict reader for Gemma 4 values: `<|"|>` strings, bare keys, numbers, booleans, lists, objects."""

    def __init__(self, text: str, position: int):
        self.text = text
        self.position = position

    def read_value(self) -> tuple[object, int]:
        value = self._value()
        return value, self.position

    def _skip_space(self) -> None:
        while self.position < len(self.text) and self.text[self.position] in " \t\r\n":
            self.position += 1

    def _value(self) -> object:
        self._skip_space()
        text, pos = self.text, self.position
        if text.startswith(GEMMA4_STRING, pos):
            end = text.find(GEMMA4_STRING, pos + len(GEMMA4_STRING))
            if end < 0:
                raise ValueError("a string is not closed with <|\"|>")
            self.position = end + len(GEMMA4_STRING)
            return text[pos + len(GEMMA4_STRING):end]
        if text.startswith("{", pos):
            return self._object()
        if text.startswith("[", pos):
            return self._list()
        match = re.compile(r"true|false|null|-?\d+(\.\d+)?([eE][-+]?\d+)?").match(text, pos)
        if not match:
            raise ValueError(f"unexpected value at {text[pos:pos + 20]!r}")
        self.position = match.end()
        return json.loads(match.group(0))

    def _object(self) -> dict:
        self.position += 1
        result: dict = {}
        while True:
            self._skip_space()
            if self.text.startswith("}", self.position):
                self.position += 1
                return result
            match = re.compile(r"[A-Za-z_][A-Za-z0-9_]*").match(self.text, self.position)
            if not match:
                raise ValueError(f"expected a key at {self.text[self.position:self.position + 20]!r}")
            self.position = match.end()
            self._skip_space()
            if not self.text.startswith(":", self.position):
                raise ValueError(f"expected ':' after the key {match.group(0)}")
            self.position += 1
            result[match.group(0)] = self._value()
            self._skip_space()
            if self.text.startswith(",", self.position):
                self.position += 1
            elif not self.text.startswith("}", self.position):
                raise ValueError("expected ',' or '}' in an object")

    def _list(self) -> list:
        self.position += 1
        result: list = []
        while True:
            self._skip_space()
            if self.text.startswith("]", self.position):
                self.position += 1
                return result
            result.append(self._value())
            self._skip_space()
            if self.text.startswith(",", self.position):
                self.position += 1
            elif not self.text.startswith("]", self.position):
                raise ValueError("expected ',' or ']' in a list")
