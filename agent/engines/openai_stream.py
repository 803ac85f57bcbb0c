"""Assembles the chunks of a streamed Chat Completions reply: text, reasoning, tool calls, usage."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from agent.engines.base import DeltaCallback


@dataclass
class PartialCall:
    """A tool call as its fragments arrive: the arguments are a JSON text until the stream ends."""

    id: str = ""
    name: str = ""
    arguments: str = ""


@dataclass
class StreamedReply:
    """Everything one streamed reply carried, plus when its first and last pieces arrived."""

    text: str = ""
    reasoning: str = ""
    calls: list[PartialCall] = field(default_factory=list)
    finish_reason: str | None = None
    usage: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, Any] = field(default_factory=dict)
    pieces: int = 0
    first_piece_at: float | None = None
    last_piece_at: float | None = None


class ReplyAssembler:
    """Feeds on stream chunks, forwards each new piece to `on_delta` and builds a `StreamedReply`."""

    def __init__(self, on_delta: DeltaCallback | None = None):
        self.on_delta = on_delta
        self.reply = StreamedReply()
        self._text: list[str] = []
        self._reasoning: list[str] = []
        self._slots: dict[int, PartialCall] = {}

    def feed(self, chunk: dict[str, Any]) -> None:
        if chunk.get("usage"):
            self.reply.usage = chunk["usage"]
        if chunk.get("timings"):
            self.reply.timings = chunk["timings"]
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            self._feed_delta(choice.get("delta") or choice.get("message") or {})
            if choice.get("finish_reason"):
                self.reply.finish_reason = choice["finish_reason"]

    def finish(self) -> StreamedReply:
        self.reply.text = "".join(self._text)
        self.reply.reasoning = "".join(self._reasoning)
        self.reply.calls = [self._slots[index] for index in sorted(self._slots)]
        return self.reply

    def _feed_delta(self, delta: dict[str, Any]) -> None:
        # vLLM before 0.10 and llama-server name the thought channel `reasoning_content`; Ollama and
        # newer vLLM name it `reasoning`.
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if isinstance(reasoning, str) and reasoning:
            self._reasoning.append(reasoning)
            self._emit("thinking", reasoning)
        content = delta.get("content")
        if isinstance(content, str) and content:
            self._text.append(content)
            self._emit("text", content)
        for fragment in delta.get("tool_calls") or []:
            self._feed_call(fragment)

    def _feed_call(self, fragment: dict[str, Any]) -> None:
        index = fragment.get("index", len(self._slots))
        call_id = fragment.get("id") or ""
        slot = self._slots.get(index)
        # Some servers send every complete call with the same index; a new id means a new call.
        if slot is not None and call_id and slot.id and call_id != slot.id:
            index = max(self._slots) + 1
            slot = None
        if slot is None:
            slot = self._slots[index] = PartialCall(id=call_id)
        function = fragment.get("function") or {}
        name = function.get("name") or ""
        arguments = function.get("arguments")
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments) if arguments else ""
        slot.name += name
        slot.arguments += arguments
        if name or arguments:
            self._emit("call", name + arguments)

    def _emit(self, kind: str, piece: str) -> None:
        now = time.perf_counter()
        if self.reply.first_piece_at is None:
            self.reply.first_piece_at = now
        self.reply.last_piece_at = now
        self.reply.pieces += 1
        if self.on_delta is not None:
            self.on_delta(kind, piece)
