"""A deterministic engine that plays back replies from a JSON Lines script.

Each line is one model reply: `{"text": "..."}` is a raw completion, parsed exactly like real model
output; `{"tool_calls": [{"name": ..., "arguments": {...}}], "text": "..."}` is a structured reply as
an OpenAI-compatible server returns it. A trajectory file is accepted too and replays its replies.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agent.chat.messages import Message, ToolCall, ToolSpec
from agent.chat.parse import parse_reply
from agent.chat.stream import ReplyStream
from agent.engines.base import DeltaCallback, Reply, ToolChoice, Usage, estimate_tokens
from agent.errors import ScriptExhausted, UsageError
from agent.trajectory import replies_for_replay

SCRIPTED_CONTEXT_SIZE = 131072
REPLY_KEYS = frozenset({"text", "tool_calls"})
CALL_KEYS = frozenset({"name", "arguments", "id"})


def load_script(path: Path) -> list[dict[str, Any]]:
    """Read a script (or a trajectory to replay) and check every line, naming the first bad one."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"Script file not found: {path}. Pass --script with a JSON Lines file of replies.")
    lines = path.read_text(encoding="utf-8").splitlines()
    first = next((line for line in lines if line.strip()), "")
    if first and '"event"' in first:
        replies = replies_for_replay(path)
        for number, entry in enumerate(replies, start=1):
            check_reply(entry, f"{path}: reply {number}")
        return replies
    replies = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as error:
            raise UsageError(f"{path}:{number}: invalid JSON ({error.msg}). Each line must be one JSON object.") from None
        check_reply(entry, f"{path}:{number}")
        replies.append(entry)
    return replies


def check_reply(entry: Any, where: str) -> None:
    """Raise UsageError, prefixed with `where`, unless `entry` has the shape of one scripted reply."""
    if not isinstance(entry, dict) or not (REPLY_KEYS & entry.keys()):
        raise UsageError(f'{where}: each line needs "text" or "tool_calls".')
    _check_keys(entry, REPLY_KEYS, where, "a reply")
    if not isinstance(entry.get("text", ""), str):
        raise UsageError(f'{where}: "text" must be a string, got {_json_kind(entry["text"])}.')
    calls = entry.get("tool_calls", [])
    if not isinstance(calls, list):
        raise UsageError(f'{where}: "tool_calls" must be a list of {{"name": ..., "arguments": {{...}}}} objects, got {_json_kind(calls)}.')
    for index, call in enumerate(calls, start=1):
        _check_call(call, f"{where}: tool call {index}")


def _check_call(call: Any, where: str) -> None:
    if not isinstance(call, dict):
        raise UsageError(f'{where} must be an object such as {{"name": "read_file", "arguments": {{...}}}}, got {_json_kind(call)}.')
    _check_keys(call, CALL_KEYS, where, "a tool call")
    if not isinstance(call.get("name"), str) or not call["name"]:
        raise UsageError(f'{where} needs "name", the tool\'s name as a string.')
    if not isinstance(call.get("arguments", {}), dict):
        raise UsageError(f'{where}: "arguments" must be an object of argument names and values, got {_json_kind(call["arguments"])}.')
    if not isinstance(call.get("id", ""), str):
        raise UsageError(f'{where}: "id" must be a string, got {_json_kind(call["id"])}.')


def _check_keys(entry: dict[str, Any], allowed: frozenset[str], where: str, what: str) -> None:
    unknown = sorted(entry.keys() - allowed)
    if unknown:
        raise UsageError(f"{where}: unknown key {unknown[0]!r} in {what}; allowed keys: {', '.join(sorted(allowed))}.")


def _json_kind(value: Any) -> str:
    """Name a JSON value's type as the script's author wrote it."""
    names = {bool: "true or false", int: "a number", float: "a number", str: "a string", list: "a list", dict: "an object"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


class ScriptedEngine:
    """Plays back a script, one reply per call, through the same parser as real output."""

    name = "scripted"
    context_size = SCRIPTED_CONTEXT_SIZE
    concurrent = False

    def __init__(self, replies: Sequence[dict[str, Any]], model_name: str = "scripted"):
        self.replies = list(replies)
        self.model_name = model_name
        self.position = 0
        self._last_prompt_tokens = 0

    @classmethod
    def from_file(cls, path: Path | str) -> ScriptedEngine:
        return cls(load_script(Path(path)), model_name=f"scripted:{Path(path).name}")

    def reply(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec],
        *,
        tool_choice: ToolChoice = "auto",
        on_delta: DeltaCallback | None = None,
        max_tokens: int | None = None,
        allowed_tools: Sequence[str] | None = None,
        end_after_code_block: bool = False,
    ) -> Reply:
        if self.position >= len(self.replies):
            raise ScriptExhausted(f"The script has no reply left after {len(self.replies)}; the run stops here.")
        entry = self.replies[self.position]
        self.position += 1

        started = time.perf_counter()
        text = entry.get("text", "")
        structured = [ToolCall(c["name"], c.get("arguments", {}), c.get("id", "")) for c in entry.get("tool_calls", [])]
        if on_delta and text:
            stream = ReplyStream(on_delta)
            stream.push(text)
            stream.close()
        parsed = parse_reply(text, tools, structured=structured)
        return Reply(text, parsed, self._usage(messages, tools, text, started), structured_calls=structured)

    def _usage(self, messages: Sequence[Message], tools: Sequence[ToolSpec], text: str, started: float) -> Usage:
        # The history only grows within a run, so everything sent before counts as reused.
        prompt_tokens = self.count_tokens(messages, tools)
        cached = min(self._last_prompt_tokens, prompt_tokens)
        self._last_prompt_tokens = prompt_tokens + estimate_tokens(text)
        return Usage(prompt_tokens, cached, estimate_tokens(text), decode_seconds=time.perf_counter() - started)

    def count_tokens(self, messages: Sequence[Message], tools: Sequence[ToolSpec]) -> int:
        text = "".join(m.content for m in messages) + "".join(t.description for t in tools)
        return estimate_tokens(text)

    def close(self) -> None:
        """Nothing to release."""
