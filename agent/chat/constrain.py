"""Incremental, schema-aware checkers of one tool call's text, for constrained decoding.

The engine samples a token as usual and calls `accepts(token_text)`. Only when that returns False does
it try the next candidate. That replaces a grammar over the whole vocabulary at every step.

The checker is a character-level pushdown automaton over the call syntax, driven by the tool
schemas. Its state is an immutable tuple (mode, data, frame) whose frames link to their parents, so
checking a piece shares the state instead of copying it, and costs O(len(piece)) whatever the
length of the call so far. String contents are not stored, only how much of the terminator has
been seen.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, NamedTuple

from agent.chat import gemma4, json_calls
from agent.chat.messages import ToolSpec

# Maximum length of a number's text, which keeps the data of each state small.
MAX_NUMBER_CHARS = 32
# Object keys are identifiers that may also contain dots and dashes, as the Gemma 4 reader accepts them.
_KEY_START = re.compile(r"[A-Za-z_]")
_KEY_CHARS = re.compile(r"[A-Za-z0-9_.-]")
_WHITESPACE = " \t\r\n"
# Numbers as JSON writes them (no leading zeros, digits after the point), which both parsers read.
_NUMBER_PREFIX = re.compile(r"-?(?:(?:0|[1-9]\d*)(?:\.\d*|(?:\.\d+)?[eE][-+]?\d*)?)?")
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?")
_INTEGER_PREFIX = re.compile(r"-?(?:0|[1-9]\d*)?")
_INTEGER = re.compile(r"-?(?:0|[1-9]\d*)")
_JSON_ESCAPES = '"\\/bfnrtu'


class _Frame(NamedTuple):
    """An open container: an object being filled, an array, or the continuation after a top-level value."""

    kind: str  # "object", "array" or "then"
    schema: dict  # the object's schema, or the array's item schema
    seen: frozenset  # object keys given so far
    parent: _Frame | None
    then: tuple | None = None  # for "then": the state that follows the value


_DONE = ("done", None, None)


class _CallMachine:
    """The transition function for one call syntax: "gemma4" (native) or "json" (JSON in tags)."""

    def __init__(self, tools: Sequence[ToolSpec], syntax: str):
        self.tools = {tool.name: tool for tool in tools}
        self.json = syntax == "json"
        self.string_end = '"' if self.json else gemma4.STRING

    def start(self) -> tuple:
        if self.json:
            return self._literals(["{", '"name"', ":", '"'], ("jname", "", None))
        return ("expect", ("call:", 0, ("name", "", None)), None)

    def run(self, state: tuple | None, piece: str) -> tuple | None:
        """Return the state after `piece`, or None when no valid call can continue with it."""
        if state is not None and self._inside_plain_string(state, piece):
            return state
        for char in piece:
            if state is None:
                return None
            state = self._step(state, char)
        return state

    def _inside_plain_string(self, state: tuple, piece: str) -> bool:
        """Tell in O(len(piece)) whether `piece` is string text that cannot end or escape the string."""
        mode, data, _ = state
        if mode != "string" or data != 0:
            return False
        if self.json:
            return '"' not in piece and "\\" not in piece and piece.isprintable()
        return "<" not in piece

    def _step(self, state: tuple, char: str) -> tuple | None:
        mode, data, frame = state
        return getattr(self, "_on_" + mode)(data, frame, char)

    # Literal text and whitespace

    def _literals(self, texts: list[str], final: tuple) -> tuple:
        """Return a state that expects each text in turn (JSON allows whitespace before each), then `final`."""
        state = final
        for text in reversed(texts):
            state = ("expect", (text, 0, state), None)
            if self.json:
                state = ("space", state, None)
        return state

    def _on_expect(self, data, frame, char):
        text, index, final = data
        if char != text[index]:
            return None
        return final if index + 1 == len(text) else ("expect", (text, index + 1, final), None)

    def _on_space(self, data, frame, char):
        return ("space", data, None) if char in _WHITESPACE else self._step(data, char)

    def _on_done(self, data, frame, char):
        return None

    # Tool name

    def _on_name(self, prefix, frame, char):
        if char == "{":
            return self._arguments(prefix, opened=True, then=("expect", (gemma4.CALL_END, 0, _DONE), None))
        return self._extend_name(prefix + char, "name")

    def _on_jname(self, prefix, frame, char):
        if char == '"':
            closing = self._literals(["}", json_calls.CALL_END], _DONE)
            value = self._arguments(prefix, opened=False, then=closing)
            return None if value is None else self._literals([",", '"arguments"', ":"], value)
        return self._extend_name(prefix + char, "jname")

    def _extend_name(self, prefix: str, mode: str) -> tuple | None:
        if any(name.startswith(prefix) for name in self.tools):
            return (mode, prefix, None)
        return None

    def _arguments(self, name: str, opened: bool, then: tuple) -> tuple | None:
        tool = self.tools.get(name)
        if tool is None:
            return None
        top = _Frame("then", {}, frozenset(), None, then)
        if opened:
            return ("first_key", None, _Frame("object", tool.parameters, frozenset(), top))
        return ("value", tool.parameters, top)

    # Values

    def _on_value(self, schema, frame, char):
        if self.json and char in _WHITESPACE:
            return ("value", schema, frame)
        kind = _value_type(schema)
        # NOTE: `enum` is not enforced; a value outside it passes here and the tool rejects it.
        if char == self.string_end[0] and kind in (None, "string"):
            if self.json:
                return ("string", 0, frame)
            return ("expect", (gemma4.STRING, 1, ("string", 0, frame)), None)
        if (char == "-" or char.isdigit()) and kind in (None, "integer", "number"):
            return ("number", (char, kind == "integer"), frame)
        if char in "tf" and kind in (None, "boolean"):
            word = "true" if char == "t" else "false"
            return ("expect", (word, 1, ("after", None, frame)), None)
        if char == "n" and (kind is None or _nullable(schema)):
            return ("expect", ("null", 1, ("after", None, frame)), None)
        if char == "[" and kind in (None, "array"):
            return ("first_item", None, _Frame("array", schema.get("items", {}), frozenset(), frame))
        if char == "{" and kind in (None, "object"):
            return ("first_key", None, _Frame("object", schema, frozenset(), frame))
        return None

    def _on_string(self, matched, frame, char):
        if self.json:
            return self._json_string(matched, frame, char)
        if char == self.string_end[matched]:
            matched += 1
            return ("after", None, frame) if matched == len(self.string_end) else ("string", matched, frame)
        return ("string", 1 if char == self.string_end[0] else 0, frame)

    def _json_string(self, escape, frame, char):
        """`escape` is 0 in plain text, 1 after a backslash, 2 to 5 while reading \\u hex digits."""
        if escape == 1:
            if char not in _JSON_ESCAPES:
                return None
            return ("string", 5 if char == "u" else 0, frame)
        if escape >= 2:
            if char not in "0123456789abcdefABCDEF":
                return None
            return ("string", 0 if escape == 2 else escape - 1, frame)
        if char == '"':
            return ("after", None, frame)
        if char == "\\":
            return ("string", 1, frame)
        return None if ord(char) < 0x20 else ("string", 0, frame)

    def _on_number(self, data, frame, char):
        text, integer = data
        prefix, whole = (_INTEGER_PREFIX, _INTEGER) if integer else (_NUMBER_PREFIX, _NUMBER)
        extended = text + char
        # At the length limit the number must be complete, or no character could end it.
        fits = len(extended) < MAX_NUMBER_CHARS or (len(extended) == MAX_NUMBER_CHARS and whole.fullmatch(extended))
        if fits and prefix.fullmatch(extended):
            return ("number", (extended, integer), frame)
        if not whole.fullmatch(text):
            return None
        return self._on_after(None, frame, char)

    # Containers

    def _on_after(self, data, frame, char):
        """Take the character after a value that ended inside `frame`: a separator, the closer, or what follows the call."""
        if frame.kind == "then":
            return self._step(frame.then, char)
        if self.json and char in _WHITESPACE:
            return ("after", None, frame)
        if char == ",":
            if frame.kind == "array":
                return ("value", frame.schema, frame)
            return ("key", None, frame) if _keys_left(frame) else None
        return self._close(frame, char)

    def _close(self, frame: _Frame, char: str) -> tuple | None:
        if frame.kind == "array":
            return ("after", None, frame.parent) if char == "]" else None
        if char != "}":
            return None
        missing = set(frame.schema.get("required", [])) - frame.seen
        return None if missing else ("after", None, frame.parent)

    def _on_first_item(self, data, frame, char):
        if self.json and char in _WHITESPACE:
            return ("first_item", None, frame)
        if char == "]":
            return ("after", None, frame.parent)
        return self._on_value(frame.schema, frame, char)

    def _on_first_key(self, data, frame, char):
        if self.json and char in _WHITESPACE:
            return ("first_key", None, frame)
        if char == "}":
            return self._close(frame, char)
        return self._on_key(None, frame, char)

    def _on_key(self, prefix, frame, char):
        """`prefix` is None before the key's first character (and, in JSON, before its opening quote)."""
        if prefix is None:
            if self.json:
                if char in _WHITESPACE:
                    return ("key", None, frame)
                return ("key", "", frame) if char == '"' else None
            return self._extend_key("", frame, char)
        if char == ('"' if self.json else ":"):
            return self._end_key(prefix, frame)
        return self._extend_key(prefix, frame, char)

    def _extend_key(self, prefix: str, frame: _Frame, char: str) -> tuple | None:
        if not (_KEY_CHARS if prefix else _KEY_START).fullmatch(char):
            return None
        extended = prefix + char
        declared = frame.schema.get("properties")
        if declared is not None and not any(k.startswith(extended) for k in declared if k not in frame.seen):
            return None
        return ("key", extended, frame)

    def _end_key(self, key: str, frame: _Frame) -> tuple | None:
        declared = frame.schema.get("properties")
        if not key or key in frame.seen or (declared is not None and key not in declared):
            return None
        schema = (declared or {}).get(key, {})
        value = ("value", schema, frame._replace(seen=frame.seen | {key}))
        return self._literals([":"], value) if self.json else value


_VALUE_TYPES = ("string", "integer", "number", "boolean", "array", "object")


def _value_type(schema: dict) -> str | None:
    """Return the one JSON type a value must have, or None when several or any are allowed."""
    kind = schema.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        kind = kinds[0] if len(kinds) == 1 else None
    return kind if kind in _VALUE_TYPES else None


def _nullable(schema: dict) -> bool:
    kind = schema.get("type")
    return bool(schema.get("nullable")) or (isinstance(kind, list) and "null" in kind)


def _keys_left(frame: _Frame) -> bool:
    """Tell whether another key may follow in this object: a `,` with no key left would be a dead end."""
    declared = frame.schema.get("properties")
    return declared is None or any(key not in frame.seen for key in declared)


# Whitespace characters allowed in a row outside strings: room for a newline and indentation.
MAX_BLANK_RUN = 12


class SchemaCallConstraint:
    """A CallConstraint over one call syntax; see `agent.chat.format.CallConstraint`."""

    def __init__(self, tools: Sequence[ToolSpec], syntax: str):
        self._machine = _CallMachine(tools, syntax)
        self._state: tuple | None = self._machine.start()
        self._checked: tuple[str, Any] = ("", self._state)
        self._blank_run = 0

    def accepts(self, piece: str) -> bool:
        """Tell whether the call so far plus `piece` can still become a valid call; the state is unchanged."""
        if self._too_much_blank(piece):
            return False
        state = self._machine.run(self._state, piece)
        self._checked = (piece, state)
        return state is not None

    def _too_much_blank(self, piece: str) -> bool:
        """Tell whether `piece` would make too long a run of whitespace outside a string.

        JSON allows any amount of whitespace between tokens, and a small model that wants to end its
        turn early can emit newlines forever, so a long run is rejected."""
        if piece.strip() or (self._state is not None and self._state[0] == "string"):
            return False
        return self._blank_run + len(piece) > MAX_BLANK_RUN

    def feed(self, piece: str) -> None:
        """Append `piece`; raise ValueError when it cannot continue a valid call."""
        checked_piece, state = self._checked
        if checked_piece != piece:
            state = self._machine.run(self._state, piece)
        if state is None:
            raise ValueError(f"{piece!r} cannot continue a valid tool call here")
        self._state = state
        self._checked = ("", state)
        in_string = state[0] == "string"
        self._blank_run = self._blank_run + len(piece) if not piece.strip() and not in_string else 0

    @property
    def done(self) -> bool:
        """True once the call's end marker has been fed."""
        return self._state == _DONE


class Gemma4CallConstraint(SchemaCallConstraint):
    """Checks `call:NAME{key:value,...}<tool_call|>`, the text after `<|tool_call>`."""

    def __init__(self, tools: Sequence[ToolSpec]):
        super().__init__(tools, "gemma4")


class JsonCallConstraint(SchemaCallConstraint):
    """Checks `{"name": ..., "arguments": {...}}</tool_call>`, the text after `<tool_call>`."""

    def __init__(self, tools: Sequence[ToolSpec]):
        super().__init__(tools, "json")
