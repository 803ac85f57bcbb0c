"""One parser entry for everything a reply can hold: native Gemma 4 calls, JSON calls, structured calls.

Strict parsing first, then only repairs whose result is unique given the tool's schema. A call that
cannot be read, names an unknown tool, or was cut off at the token limit is never run: it becomes a
`CallProblem` whose message names the problem and shows the shape of one correct call.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from agent.chat import json_calls
from agent.chat.gemma4 import CALL_END as GEMMA4_CALL_END
from agent.chat.gemma4 import CALL_START as GEMMA4_CALL_START
from agent.chat.gemma4 import STRING as GEMMA4_STRING
from agent.chat.gemma4 import THOUGHT_END, EndOfText, Gemma4Reader
from agent.chat.messages import ToolCall, ToolSpec
from agent.chat.repair import RepairError, repair_arguments
from agent.chat.thoughts import CHANNEL_START, clean_content, leaked_thought_end, thought_end, thought_text

JSON_CALL_START = json_calls.CALL_START
JSON_CALL_END = json_calls.CALL_END

_CALL_HEAD = re.compile(r"\s*call\s*:\s*([A-Za-z_][\w.-]*)\s*\{")
_JSON_CALL_HEAD = re.compile(r'\{\s*"(?:name|function)"\s*:')
_FENCE = re.compile(r"```[\w-]*[ \t]*\n(.*?)\n?```", re.DOTALL)
# Placeholders our own messages and instructions use (⟨path⟩), and the <file path> kind models invent.
_PLACEHOLDER = re.compile(r"⟨[^⟩\n]{1,60}⟩|<[A-Za-z_][^<>\n|]{0,40}>")


@dataclass
class CallProblem:
    """A call in the reply that was not run, with the message the model gets about it."""

    message: str
    raw: str = ""


@dataclass
class ParsedReply:
    """What a reply contains once markup is taken apart.

    `repaired` counts calls accepted only after a repair. `duplicates` lists the indexes in `calls` of
    calls that repeat an earlier call of the same reply exactly.
    """

    content: str = ""
    thinking: str = ""
    calls: list[ToolCall] = field(default_factory=list)
    problems: list[CallProblem] = field(default_factory=list)
    repaired: int = 0
    duplicates: list[int] = field(default_factory=list)


class _CallError(ValueError):
    """A call that was found but cannot be run; `tool` is set when its tool is known."""

    def __init__(self, reason: str, tool: ToolSpec | None = None):
        super().__init__(reason)
        self.tool = tool


def parse_reply(
    text: str,
    tools: Sequence[ToolSpec],
    *,
    structured: Sequence[ToolCall] = (),
    truncated: bool = False,
) -> ParsedReply:
    """Parse a raw reply into visible content, thoughts, calls and problems.

    `structured` contains calls an HTTP server already returned as objects. `truncated` marks a reply
    that stopped at the token limit, so an unclosed call at its end is rejected instead of run.
    """
    parser = _ReplyParser({tool.name: tool for tool in tools}, truncated)
    for call in structured:
        parser.take_structured(call)
    body = parser.take_marked(text)
    body = parser.take_bare_json(body)
    parser.result.content = clean_content(body)
    parser.mark_duplicates()
    return parser.result


class _ReplyParser:
    def __init__(self, tools: dict[str, ToolSpec], truncated: bool):
        self.tools = tools
        self.truncated = truncated
        self.result = ParsedReply()
        self.structured_keys: set[str] = set()

    def take_structured(self, call: ToolCall) -> None:
        arguments: Any = call.arguments
        repaired = False
        if isinstance(arguments, str):
            arguments, repaired = _json_arguments(arguments, self.tools.get(call.name))
        raw = json.dumps(call.to_dict(), ensure_ascii=False)
        self._accept(call.name, arguments, raw, "json", call.id, repaired=repaired, structured=True)
        self.structured_keys.update(c.key() for c in self.result.calls)

    def take_marked(self, text: str) -> str:
        """Take thoughts and marked calls in the order they occur; return the text outside them.

        Reading them in one pass keeps markers inside a call's strings (a file that contains
        `<channel|>` or another call syntax) from being taken for markup.
        """
        thoughts: list[str] = []
        position = leaked_thought_end(text)
        if position:
            thoughts.append(thought_text(text[: position - len(THOUGHT_END)]))
        outside: list[str] = []
        while (found := _next_marker(text, position)) is not None:
            start, marker = found
            outside.append(text[position:start])
            inner = start + len(marker)
            if marker == CHANNEL_START:
                end, position = thought_end(text, inner, self.truncated)
                thoughts.append(thought_text(text[inner:end]))
            elif marker == GEMMA4_CALL_START:
                position = self._take_one_gemma4_call(text, inner)
            else:
                position = self._take_one_tagged_json(text, inner)
        outside.append(text[position:])
        self.result.thinking = "\n".join(thought for thought in thoughts if thought)
        return "".join(outside)

    def _take_one_gemma4_call(self, body: str, inner_start: int) -> int:
        """Parse the call whose text begins at `inner_start`; return where the text after it begins."""
        search_from = inner_start
        strict = _read_gemma4_strict(body, inner_start)
        if strict is not None:
            name, arguments, end = strict
            closing = _gemma4_closing(body, end)
            if closing == "closed":
                self._accept(name, arguments, body[inner_start:end], "gemma4")
                return body.find(GEMMA4_CALL_END, end) + len(GEMMA4_CALL_END)
            if closing == "unclosed" and self.truncated:
                self._cut_off(body[inner_start:end], _CALL_HEAD.match(body, inner_start))
                return end
            if closing == "unclosed":
                # A complete object with only the end marker missing: nothing else could be meant.
                self._accept(name, arguments, body[inner_start:end], "gemma4", repaired=True)
                return end
            search_from = end  # text between the object and its end marker: repair up to that marker
        elif self.truncated and _runs_off_the_end(body, inner_start):
            # An end marker found further on lies inside a string the reply never closed.
            self._cut_off(body[inner_start:], _CALL_HEAD.match(body, inner_start))
            return len(body)
        close = body.find(GEMMA4_CALL_END, search_from)
        raw = body[inner_start:] if close < 0 else body[inner_start:close]
        after = len(body) if close < 0 else close + len(GEMMA4_CALL_END)
        if close < 0 and self.truncated:
            self._cut_off(raw, _CALL_HEAD.match(raw))
            return after
        self._repair_gemma4(raw)
        return after

    def _repair_gemma4(self, raw: str) -> None:
        if raw.strip().startswith("{"):
            self._take_json_text(raw.strip(), repaired=True)
            return
        head = _CALL_HEAD.match(raw)
        if head is None:
            self._problem(_CallError("a call starts with call:NAME{ followed by the arguments"), raw, "gemma4")
            return
        tool = self._known_tool(head.group(1), raw)
        if tool is None:
            return
        body = raw[head.end():].rstrip()
        body = body[:-1] if body.endswith("}") else body
        try:
            arguments = repair_arguments(body, tool.parameters, "gemma4")
        except RepairError as error:
            self._problem(_CallError(str(error), tool), raw, "gemma4")
            return
        self._accept(tool.name, arguments, raw, "gemma4", repaired=True)

    def _take_one_tagged_json(self, body: str, inner_start: int) -> int:
        """Parse the JSON call whose text begins at `inner_start`; return where the text after it begins."""
        whole = _read_tagged_json(body, inner_start)
        if whole is not None:
            data, after = whole
            self._take_json_data(data, body[inner_start:after], repaired=False)
            return after
        close = body.find(JSON_CALL_END, inner_start)
        raw = (body[inner_start:] if close < 0 else body[inner_start:close]).strip()
        after = len(body) if close < 0 else close + len(JSON_CALL_END)
        if close < 0 and self.truncated:
            self._cut_off(raw, re.search(r'"name"\s*:\s*"([^"]+)"', raw))
            return after
        self._take_json_text(_unfence(raw), repaired=close < 0)
        return after

    def take_bare_json(self, body: str) -> str:
        """Find call objects in plain text or ```json fences: `{"name": ..., "arguments": {...}}`."""
        outside_calls: list[str] = []
        position = 0
        while match := _JSON_CALL_HEAD.search(body, position):
            end = self._take_bare_object(body, match.start())
            if end is None:
                outside_calls.append(body[position:match.end()])
                position = match.end()
                continue
            outside_calls.append(body[position:match.start()])
            position = end
        outside_calls.append(body[position:])
        return _FENCE.sub(lambda m: "" if not m.group(1).strip() else m.group(0), "".join(outside_calls))

    def _take_bare_object(self, body: str, start: int) -> int | None:
        """Take the call object at `start`; return where it ends, or None when it is no call attempt."""
        try:
            data, end = json.JSONDecoder().raw_decode(body, start)
        except json.JSONDecodeError:
            return self._take_broken_bare_object(body, start)
        if not _looks_like_call(data):
            return None
        self._take_json_data(data, body[start:end], repaired=False)
        return end

    def _take_broken_bare_object(self, body: str, start: int) -> int | None:
        """Take a call object that is not valid JSON; it ends at the last `}` before a fence or the end."""
        fence = body.find("```", start)
        stop = len(body) if fence < 0 else fence
        raw = body[start:stop].rstrip()
        if not re.search(r'"(?:arguments|parameters)"\s*:', raw):
            return None
        if self.truncated and fence < 0:
            self._cut_off(raw, re.search(r'"name"\s*:\s*"([^"]+)"', raw))
            return stop
        closing = raw.rfind("}")
        if closing < 0:
            return None
        self._take_json_text(raw[: closing + 1], repaired=True)
        return start + closing + 1

    def _take_json_text(self, raw: str, repaired: bool) -> None:
        try:
            data = json.loads(raw)
        except json.JSONDecodeError:
            data = _python_literal(raw)
            if not _looks_like_call(data):
                self._repair_json(raw)
                return
            repaired = True
        if not _looks_like_call(data):
            self._problem(_CallError('a JSON call needs a "name" and an "arguments" object'), raw, "json")
            return
        self._take_json_data(data, raw, repaired)

    def _take_json_data(self, data: dict, raw: str, repaired: bool) -> None:
        function = data.get("function") if isinstance(data.get("function"), dict) else data
        name = function.get("name")
        arguments = function.get("arguments", function.get("parameters", {}))
        if isinstance(arguments, str):
            arguments, repaired_arguments = _json_arguments(arguments, self.tools.get(name))
            repaired = repaired or repaired_arguments
        self._accept(name, arguments, raw, "json", repaired=repaired)

    def _repair_json(self, raw: str) -> None:
        name_match = re.search(r'"name"\s*:\s*"([^"]+)"', raw)
        arguments_match = re.search(r'"(?:arguments|parameters)"\s*:\s*\{', raw)
        if name_match is None or arguments_match is None:
            self._problem(_CallError('a JSON call needs a "name" and an "arguments" object'), raw, "json")
            return
        tool = self._known_tool(name_match.group(1), raw)
        if tool is None:
            return
        body = raw[arguments_match.end():].rstrip()
        if not body.endswith("}}"):
            self._problem(_CallError("the call must end with the arguments object and the closing brace", tool), raw, "json")
            return
        try:
            arguments = repair_arguments(body[:-2], tool.parameters, "json")
        except RepairError as error:
            self._problem(_CallError(str(error), tool), raw, "json")
            return
        self._accept(tool.name, arguments, raw, "json", repaired=True)

    def _accept(
        self, name: Any, arguments: Any, raw: str, syntax: str, call_id: str = "", *, repaired: bool = False, structured: bool = False
    ) -> None:
        tool = self._known_tool(name, raw)
        if tool is None:
            return
        try:
            _check_arguments(tool, arguments)
        except _CallError as error:
            self._problem(error, raw, syntax)
            return
        call = ToolCall(tool.name, arguments, id=call_id or f"call_{len(self.result.calls) + 1}")
        if not structured and call.key() in self.structured_keys:
            return  # the server returned this call as an object and repeated it in the text
        self.result.calls.append(call)
        self.result.repaired += int(repaired)

    def _known_tool(self, name: Any, raw: str) -> ToolSpec | None:
        tool = self.tools.get(name) if isinstance(name, str) else None
        if tool is None:
            listed = ", ".join(sorted(self.tools)) or "none"
            message = f"There is no tool named {name!r}, so nothing was run. The tools are: {listed}."
            self.result.problems.append(CallProblem(message, raw))
        return tool

    def _problem(self, error: _CallError, raw: str, syntax: str) -> None:
        tool = error.tool
        subject = f"The call of {tool.name}" if tool else "A tool call"
        message = f"{subject} could not be read: {error}. Nothing was run."
        if tool is not None:
            message += f" Write the call like this, with real values in place of the ⟨...⟩ placeholders: {example_call(tool, syntax)}"
        self.result.problems.append(CallProblem(message, raw))

    def _cut_off(self, raw: str, head: re.Match | None) -> None:
        if not raw.strip():
            return  # only the start marker arrived: no call was begun, so there is nothing to report
        name = f" of {head.group(1)}" if head else ""
        message = (
            f"Your reply reached the token limit inside the call{name}, so that call was not run. "
            "Continue by sending it again with less text: split a long file into several smaller files, "
            "or write it in parts."
        )
        self.result.problems.append(CallProblem(message, raw))

    def mark_duplicates(self) -> None:
        seen: set[str] = set()
        for index, call in enumerate(self.result.calls):
            if call.key() in seen:
                self.result.duplicates.append(index)
            seen.add(call.key())


_MARKERS = (CHANNEL_START, GEMMA4_CALL_START, JSON_CALL_START)


def _next_marker(text: str, position: int) -> tuple[int, str] | None:
    """Return the first thought or call marker at or after `position`, with its offset."""
    found = [(start, marker) for marker in _MARKERS if (start := text.find(marker, position)) >= 0]
    return min(found, default=None)


def _gemma4_closing(body: str, end: int) -> str:
    """Tell how the call text that strict reading ended at `end` is closed: closed, unclosed or broken."""
    close = body.find(GEMMA4_CALL_END, end)
    if close >= 0 and not body[end:close].strip():
        return "closed"
    next_call = body.find(GEMMA4_CALL_START, end)
    if close < 0 or 0 <= next_call < close:
        return "unclosed"
    return "broken"


def _check_arguments(tool: ToolSpec, arguments: Any) -> None:
    if not isinstance(arguments, dict):
        raise _CallError("the arguments must be an object", tool)
    properties = tool.parameters.get("properties")
    if properties is not None:
        unknown = [key for key in arguments if key not in properties]
        if unknown:
            raise _CallError(f"{tool.name} has no argument {unknown[0]!r}", tool)
    missing = [key for key in tool.parameters.get("required", []) if key not in arguments]
    if missing:
        raise _CallError(f"the required argument {missing[0]!r} is missing", tool)
    for key, value in arguments.items():
        if isinstance(value, str) and _PLACEHOLDER.fullmatch(value.strip()):
            raise _CallError(f"the argument {key!r} is the placeholder {value.strip()!r}, not a real value", tool)


def example_call(tool: ToolSpec, syntax: str) -> str:
    """Return one call of `tool` in `syntax` ("gemma4" or "json") with ⟨...⟩ placeholders as values.

    The parser refuses placeholder values, so a model that copies the example runs nothing.
    """
    properties = tool.parameters.get("properties", {})
    required = [key for key in tool.parameters.get("required", []) if key in properties]
    if syntax == "json":
        values = ", ".join(f'"{key}": {_json_placeholder(key, properties[key])}' for key in required)
        return f'{JSON_CALL_START}{{"name": "{tool.name}", "arguments": {{{values}}}}}{JSON_CALL_END}'
    values = ",".join(f"{key}:{_gemma4_placeholder(key, properties[key])}" for key in sorted(required))
    return f"{GEMMA4_CALL_START}call:{tool.name}{{{values}}}{GEMMA4_CALL_END}"


def _json_placeholder(key: str, schema: dict) -> str:
    return f'"⟨{key}⟩"' if schema.get("type", "string") == "string" else f"⟨{key}⟩"


def _gemma4_placeholder(key: str, schema: dict) -> str:
    if schema.get("type", "string") == "string":
        return f"{GEMMA4_STRING}⟨{key}⟩{GEMMA4_STRING}"
    return f"⟨{key}⟩"


def _read_tagged_json(body: str, inner_start: int) -> tuple[dict, int] | None:
    """Read a valid JSON call followed by its end tag; return it and where the text after the tag begins.

    Decoding before looking for the end tag keeps a `</tool_call>` inside a string from cutting the call.
    """
    start = len(body) - len(body[inner_start:].lstrip())
    try:
        data, end = json.JSONDecoder().raw_decode(body, start)
    except json.JSONDecodeError:
        return None
    rest = body[end:].lstrip()
    if not _looks_like_call(data) or not rest.startswith(JSON_CALL_END):
        return None
    return data, len(body) - len(rest) + len(JSON_CALL_END)


def _looks_like_call(data: Any) -> bool:
    if not isinstance(data, dict):
        return False
    function = data.get("function") if isinstance(data.get("function"), dict) else data
    if "description" in function and "parameters" in function:
        return False  # a tool declaration copied from the prompt, not a call
    return isinstance(function.get("name"), str) and ("arguments" in function or "parameters" in function)


def _json_arguments(text: str, tool: ToolSpec | None) -> tuple[Any, bool]:
    """Read arguments sent as a JSON string; return them and whether unescaped quotes had to be repaired."""
    try:
        return json.loads(text), False
    except json.JSONDecodeError:
        stripped = text.strip()
        if tool is None or not stripped.startswith("{") or not stripped.endswith("}"):
            return text, False
    try:
        return repair_arguments(stripped[1:-1], tool.parameters, "json"), True
    except RepairError:
        return text, False


def _python_literal(raw: str) -> Any:
    """Read a call written as a Python dict (single quotes, True/False); only literals are evaluated."""
    import ast
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Python warns about escapes like "\d" in the model's text
            return ast.literal_eval(raw)
    except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
        return None


def _unfence(text: str) -> str:
    match = _FENCE.fullmatch(text.strip())
    return match.group(1).strip() if match else text


def parse_gemma4_call(raw: str) -> tuple[str, dict]:
    """Parse the inside of `<|tool_call>...<tool_call|>`: `call:NAME{key:value,...}`."""
    parsed = _read_gemma4_strict(raw, 0)
    if parsed is None:
        raise ValueError("not a call of the form call:NAME{key:value,...}")
    name, arguments, end = parsed
    if raw[end:].strip():
        raise ValueError(f"unexpected text after the arguments: {raw[end:].strip()[:40]!r}")
    return name, arguments


def _runs_off_the_end(text: str, start: int) -> bool:
    """Tell whether strict reading of the call at `start` fails because the text ends inside the call."""
    head = _CALL_HEAD.match(text, start)
    if head is None:
        return False
    try:
        Gemma4Reader(text, head.end() - 1).value()
    except EndOfText:
        return True
    except ValueError:
        return False
    return False


def _read_gemma4_strict(text: str, start: int) -> tuple[str, dict, int] | None:
    """Read `call:NAME{...}` at `start`; return name, arguments and the end offset, or None."""
    head = _CALL_HEAD.match(text, start)
    if head is None:
        return None
    reader = Gemma4Reader(text, head.end() - 1)
    try:
        arguments = reader.value()
    except ValueError:
        return None
    return head.group(1), arguments, reader.position
