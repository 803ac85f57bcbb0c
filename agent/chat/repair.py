"""Schema-guided repair of call arguments that strict parsing could not read.

Small models break string quoting: ordinary or mixed quotes in Gemma 4 values, no delimiters at all
around a multi-line string, unescaped quotes inside JSON strings. Knowing the tool's argument names,
the argument text can be cut at `,key:` boundaries instead of at quotes. Every way to cut it is
tried; the repair succeeds only when exactly one reading gives valid values for every argument.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agent.chat.gemma4 import STRING, read_gemma4_value

# More boundary candidates than this means the text is full of `,key:` lookalikes: too costly to
# enumerate and too likely to be ambiguous, so the call is not repaired.
MAX_BOUNDARY_CANDIDATES = 12
_QUOTES = (STRING, '"', "'")


class RepairError(ValueError):
    """The arguments could not be repaired; the message explains why in words the model can act on."""


@dataclass(frozen=True)
class _Boundary:
    start: int  # where the separator before the key begins
    end: int  # just after the colon that follows the key
    key: str


def repair_arguments(body: str, schema: dict[str, Any], syntax: str) -> dict[str, Any]:
    """Return the one reading of the argument text `body` (inside the braces) that fits `schema`.

    `syntax` is "gemma4" or "json". Raises RepairError when no reading or more than one fits.
    """
    properties = schema.get("properties", {})
    if not body.strip():
        return {}
    boundaries = _find_boundaries(body, properties, syntax)
    if not boundaries or body[: boundaries[0].start].strip():
        raise RepairError("the arguments must start with the name of an argument")
    if len(boundaries) > MAX_BOUNDARY_CANDIDATES:
        raise RepairError("the argument values contain too many `,name:` lookalikes to tell them apart")
    interpret = _value_reader(syntax)
    invalid: list[str] = []
    readings = _readings(body, boundaries, properties, interpret, invalid)
    return _unique_reading(readings, schema, invalid)


def _find_boundaries(body: str, properties: dict[str, Any], syntax: str) -> list[_Boundary]:
    if not properties:
        return []
    names = "|".join(re.escape(name) for name in sorted(properties, key=len, reverse=True))
    if syntax == "json":
        pattern = re.compile(r'(?:^|,)\s*"(' + names + r')"\s*:')
    else:
        pattern = re.compile(r"(?:^|,)\s*[\"']?(" + names + r")[\"']?\s*:")
    return [_Boundary(m.start(), m.end(), m.group(1)) for m in pattern.finditer(body)]


def _readings(
    body: str, boundaries: list[_Boundary], properties: dict[str, Any], interpret, invalid: list[str]
) -> list[dict]:
    """Return up to two readings: each picks boundaries in order, with distinct keys, all values valid.

    Keys whose value text could not be read are appended to `invalid`, for the error message.
    """
    found: list[dict] = []
    memo: dict[tuple[int, int], Any] = {}

    def value_between(boundary: _Boundary, stop: int) -> Any:
        slot = (boundary.end, stop)
        if slot not in memo:
            memo[slot] = interpret(body[boundary.end:stop], properties.get(boundary.key, {}))
            if memo[slot] is _INVALID:
                invalid.append(boundary.key)
        return memo[slot]

    def extend(index: int, reading: dict) -> None:
        if len(found) > 1:
            return
        current = boundaries[index]
        for following in [*range(index + 1, len(boundaries)), None]:
            stop = len(body) if following is None else boundaries[following].start
            value = value_between(current, stop)
            if value is _INVALID:
                continue
            if following is None:
                found.append({**reading, current.key: value})
            elif boundaries[following].key not in reading and boundaries[following].key != current.key:
                extend(following, {**reading, current.key: value})

    extend(0, {})
    return found


def _unique_reading(readings: list[dict], schema: dict[str, Any], invalid: list[str]) -> dict[str, Any]:
    required = schema.get("required", [])
    complete = [reading for reading in readings if all(key in reading for key in required)]
    if len(complete) == 1:
        return complete[0]
    if len(complete) > 1:
        raise RepairError("a string value contains text that looks like the start of another argument")
    if readings:
        missing = [key for key in required if key not in readings[0]]
        raise RepairError(f"the required argument {missing[0]!r} is missing")
    if invalid:
        expected = schema.get("properties", {}).get(invalid[0], {}).get("type", "value")
        raise RepairError(f"the value of {invalid[0]!r} is not a valid {expected}")
    raise RepairError("a value does not match the type the tool declares for it")


class _Invalid:
    """Marks a value text that cannot be read as its declared type."""


_INVALID = _Invalid()


def _value_reader(syntax: str) -> Callable[[str, dict], Any]:
    def interpret(text: str, schema: dict) -> Any:
        kind = schema.get("type")
        if kind == "string":
            return _json_string(text) if syntax == "json" else _gemma4_string(text)
        if kind in ("integer", "number", "boolean"):
            return _scalar(text, kind)
        return _structured(text, syntax, kind)

    return interpret


def _gemma4_string(text: str) -> Any:
    """Read a Gemma 4 string value written with ordinary, mixed, one-sided or no quotes."""
    if text.strip().startswith(_QUOTES):
        text = text.strip()  # spaces around a quoted value are layout, as in `path: "a.py"`
    opener = next((q for q in _QUOTES if text.startswith(q)), "")
    closer = next((q for q in _QUOTES if text.endswith(q) and len(text) >= len(opener) + len(q)), "")
    if opener == '"' and closer == '"':
        decoded = _json_literal(text)
        if isinstance(decoded, str):
            return decoded
    single_line = "\n" not in text.strip()
    # Unquoted text often ends with a quote (`echo "hi"`), so only <|"|> counts as a lone closer; a lone
    # ordinary opening quote counts on one line, where it can only be an unclosed string.
    if not opener and closer != STRING:
        closer = ""
    if not closer and opener != STRING and not single_line:
        opener = ""
    inner = text[len(opener): len(text) - len(closer)]
    if STRING in inner:
        return _INVALID  # the special token never occurs inside a string
    if not opener and not closer and single_line:
        inner = inner.strip()
    return inner


def _json_literal(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return None


def _json_string(text: str) -> Any:
    """Read a JSON string whose inner double quotes may be unescaped."""
    text = text.strip()
    if len(text) < 2 or not (text.startswith('"') and text.endswith('"')):
        return _INVALID
    inner = re.sub(r'(?<!\\)((?:\\\\)*)"', r'\1\\"', text[1:-1])
    try:
        return json.loads(f'"{inner}"', strict=False)
    except json.JSONDecodeError:
        return _INVALID


def _scalar(text: str, kind: str) -> Any:
    text = text.strip()
    for quote in _QUOTES:
        if len(text) >= 2 * len(quote) and text.startswith(quote) and text.endswith(quote):
            text = text[len(quote):-len(quote)].strip()
            break
    if kind == "boolean":
        return {"true": True, "false": False}.get(text.lower(), _INVALID)
    try:
        if kind == "integer":
            return int(text)
        number = float(text)
    except ValueError:
        return _INVALID
    return int(number) if number.is_integer() and re.fullmatch(r"-?\d+", text) else number


def _structured(text: str, syntax: str, kind: str | None) -> Any:
    text = text.strip()
    try:
        value = json.loads(text) if syntax == "json" else read_gemma4_value(text)
    except ValueError:
        if kind is None:
            return _json_string(text) if syntax == "json" else _gemma4_string(text)
        return _INVALID
    expected = {"array": list, "object": dict}.get(kind or "")
    if expected and not isinstance(value, expected):
        return _INVALID
    return value
