"""The built-in Gemma 4 chat format: turns, native tool declarations, calls and responses, and a reader of its values.

Gemma 4 writes values in its own syntax: strings between `<|"|>` tokens with no escaping, bare object
keys in sorted order, upper-case schema types. A whole tool-calling exchange stays in one model turn:
calls, then their responses, then more calls or the final text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from agent.chat.messages import Message, ToolCall, ToolSpec

BOS = "<bos>"
TURN_START = "<|turn>"
TURN_END = "<turn|>"
THINK = "<|think|>"
THOUGHT_START = "<|channel>thought\n"
THOUGHT_END = "<channel|>"
STRING = '<|"|>'
CALL_START = "<|tool_call>"
CALL_END = "<tool_call|>"
RESPONSE_START = "<|tool_response>"
RESPONSE_END = "<tool_response|>"
DECLARATION_START = "<|tool>"
DECLARATION_END = "<tool|>"
EMPTY_THOUGHT = THOUGHT_START + THOUGHT_END

_ROLES = {"system": "system", "user": "user", "assistant": "model"}


def gemma4_value(value: Any, *, schema: bool = False) -> str:
    """Write a JSON-like value in Gemma 4 syntax; with `schema`, `type` values are upper-cased."""
    if isinstance(value, str):
        return STRING + value + STRING
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    if isinstance(value, dict):
        return _gemma4_object(value, schema)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(gemma4_value(item, schema=schema) for item in value) + "]"
    return STRING + str(value) + STRING


def _gemma4_object(value: dict, schema: bool) -> str:
    members = []
    for key in sorted(value):
        item = value[key]
        if schema and key == "type" and isinstance(item, str):
            item = item.upper()
        members.append(f"{key}:{gemma4_value(item, schema=schema)}")
    return "{" + ",".join(members) + "}"


def gemma4_declaration(tool: ToolSpec) -> str:
    """Write one tool declaration for the system turn."""
    body = {"description": tool.description, "parameters": tool.parameters}
    return f"{DECLARATION_START}declaration:{tool.name}{gemma4_value(body, schema=True)}{DECLARATION_END}"


def gemma4_call(call: ToolCall) -> str:
    """Write one call exactly as the model emits it."""
    return f"{CALL_START}call:{call.name}{gemma4_value(call.arguments)}{CALL_END}"


def gemma4_response(name: str, result: str) -> str:
    """Write one tool result; results are text, so they go under the `value` key."""
    # A result that contains `<|"|>` or a turn marker is written as is. The in-process engine
    # tokenizes such text as plain text (agent/chat/literal.py).
    return f"{RESPONSE_START}response:{name}{{value:{STRING}{result}{STRING}}}{RESPONSE_END}"


class Gemma4Format:
    """Renders conversations the way Gemma 4 instruction-tuned models were trained to read them."""

    name = "gemma4"
    call_start = CALL_START
    call_end = CALL_END
    # The model may also try to write a tool response itself after its calls: stop there too.
    stop: Sequence[str] = (TURN_END, RESPONSE_START)

    def render(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec],
        *,
        add_generation_prompt: bool = True,
        thinking: bool = False,
    ) -> str:
        """Return the prompt text, starting with `<bos>`."""
        parts = [BOS, _system_turn(messages, tools, thinking)]
        rest = messages[1:] if messages and messages[0].role == "system" else messages
        open_turn = _render_turns(parts, rest, thinking)
        if add_generation_prompt and not open_turn:
            parts.append(f"{TURN_START}model\n")
            if not thinking:
                parts.append(EMPTY_THOUGHT)
        return "".join(parts)

    def call_constraint(self, tools: Sequence[ToolSpec]):
        from agent.chat.constrain import Gemma4CallConstraint

        return Gemma4CallConstraint(tools)


def _system_turn(messages: Sequence[Message], tools: Sequence[ToolSpec], thinking: bool) -> str:
    system = messages[0].content.strip() if messages and messages[0].role == "system" else ""
    if not (system or tools or thinking):
        return ""
    declarations = "".join(gemma4_declaration(tool) for tool in tools)
    think = THINK if thinking else ""
    return f"{TURN_START}system\n{think}{system}{declarations}{TURN_END}\n"


def _render_turns(parts: list[str], messages: Sequence[Message], thinking: bool) -> bool:
    """Append the turns after the system turn; return True when the last model turn is still open.

    A model turn stays open while its calls wait for responses. The turn that is still open when the
    prompt ends keeps the empty thought channel its generation prompt began with (thinking off), so
    each step of a tool-calling exchange only appends to the previous prompt and the KV cache holds.
    NOTE: whether the published template keeps that empty channel in the current turn is not known here.
    """
    open_turn = False
    last_user_turn = max((i for i, m in enumerate(messages) if m.role not in ("assistant", "tool")), default=-1)
    for index, message in enumerate(messages):
        if message.role == "assistant":
            if not open_turn:
                parts.append(f"{TURN_START}model\n")
                if not thinking and index > last_user_turn:
                    parts.append(EMPTY_THOUGHT)
            parts.append(message.content.strip())
            parts.extend(gemma4_call(call) for call in message.tool_calls)
            open_turn = bool(message.tool_calls)
            if not open_turn:
                parts.append(f"{TURN_END}\n")
        elif message.role == "tool":
            parts.append(gemma4_response(message.name, message.content))
        else:
            if open_turn:
                parts.append(f"{TURN_END}\n")
                open_turn = False
            role = _ROLES.get(message.role, message.role)
            parts.append(f"{TURN_START}{role}\n{message.content.strip()}{TURN_END}\n")
    return open_turn


def read_gemma4_value(text: str) -> Any:
    """Read one whole Gemma 4 value; raise ValueError when `text` is not exactly one value."""
    reader = Gemma4Reader(text, 0)
    value = reader.value()
    if text[reader.position:].strip():
        raise ValueError(f"unexpected text after the value: {text[reader.position:reader.position + 20]!r}")
    return value


class EndOfText(ValueError):
    """The text ended inside a value."""


_KEY = re.compile(r"[A-Za-z_][\w.-]*")
_LITERAL = re.compile(r"true|false|null|-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


class Gemma4Reader:
    """A strict reader for Gemma 4 values: `<|"|>` strings, bare keys, numbers, booleans, lists, objects."""

    def __init__(self, text: str, position: int):
        self.text = text
        self.position = position

    def skip_space(self) -> None:
        while self.position < len(self.text) and self.text[self.position] in " \t\r\n":
            self.position += 1
        if self.position >= len(self.text):
            raise EndOfText("the text ends inside the call")

    def value(self) -> Any:
        self.skip_space()
        text, position = self.text, self.position
        if text.startswith(STRING, position):
            end = text.find(STRING, position + len(STRING))
            if end < 0:
                raise EndOfText('a string is not closed with <|"|>')
            self.position = end + len(STRING)
            return text[position + len(STRING):end]
        if text.startswith("{", position):
            return self._object()
        if text.startswith("[", position):
            return self._list()
        match = _LITERAL.match(text, position)
        if not match:
            raise ValueError(f"unexpected value at {text[position:position + 20]!r}")
        self.position = match.end()
        return json.loads(match.group(0))

    def _object(self) -> dict:
        self.position += 1
        result: dict = {}
        while True:
            self.skip_space()
            if self.text.startswith("}", self.position):
                self.position += 1
                return result
            match = _KEY.match(self.text, self.position)
            if not match:
                raise ValueError(f"expected a key at {self.text[self.position:self.position + 20]!r}")
            self.position = match.end()
            self.skip_space()
            if not self.text.startswith(":", self.position):
                raise ValueError(f"expected ':' after the key {match.group(0)}")
            self.position += 1
            result[match.group(0)] = self.value()
            self._separator("}")

    def _list(self) -> list:
        self.position += 1
        result: list = []
        while True:
            self.skip_space()
            if self.text.startswith("]", self.position):
                self.position += 1
                return result
            result.append(self.value())
            self._separator("]")

    def _separator(self, closer: str) -> None:
        self.skip_space()
        if self.text.startswith(",", self.position):
            self.position += 1
        elif not self.text.startswith(closer, self.position):
            raise ValueError(f"expected ',' or '{closer}'")
