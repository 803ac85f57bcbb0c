"""Sort a reply's text into visible text, thoughts and calls while it streams in.

The display must never show thought-channel text or call markup as ordinary text, yet a marker can
arrive split over several chunks. Text that could be the start of a marker is held_back back until the
next chunk shows what it is. The joined raw text still goes to `parse_reply` at the end.
"""

from __future__ import annotations

from collections.abc import Callable

from agent.chat import gemma4, json_calls
from agent.chat.thoughts import CHANNEL_END, CHANNEL_START

# Markers that switch the kind of the text that follows them, per current kind.
_SWITCHES = {
    "text": {
        CHANNEL_START: "thinking",
        gemma4.CALL_START: "call",
        json_calls.CALL_START: "call",
        CHANNEL_END: "text",
    },
    "thinking": {CHANNEL_END: "text", gemma4.CALL_START: "call", json_calls.CALL_START: "call"},
    "call": {gemma4.CALL_END: "text", json_calls.CALL_END: "text"},
}
# Markers removed from the display without switching kind.
_DROPPED = (gemma4.TURN_END, gemma4.THINK, "<end_of_turn>", "<eos>")
_THOUGHT_NAME = "thought\n"


class ReplyStream:
    """Receives reply chunks and calls `on_delta(kind, text)` with kind "text", "thinking" or "call"."""

    def __init__(self, on_delta: Callable[[str, str], None]):
        self.on_delta = on_delta
        self.kind = "text"
        self.raw: list[str] = []
        self._pending = ""
        self._thought_start = False
        self._thought_name = ""

    @property
    def text(self) -> str:
        """The whole raw text received so far."""
        return "".join(self.raw)

    def push(self, chunk: str) -> None:
        """Take one chunk and send on every part of it whose kind is certain."""
        self.raw.append(chunk)
        self._pending += chunk
        while self._pending:
            marker_at, marker = self._next_marker()
            if marker is None:
                break
            self._emit(self._pending[:marker_at])
            self._pending = self._pending[marker_at + len(marker):]
            self._switch(marker)
        held_back = _marker_prefix_length(self._pending, self._markers())
        self._emit(self._pending[: len(self._pending) - held_back])
        self._pending = self._pending[len(self._pending) - held_back:]

    def close(self) -> None:
        """Send on whatever was held_back back; the reply is complete."""
        self._emit(self._pending)
        self._pending = ""

    def _markers(self) -> tuple[str, ...]:
        return (*_SWITCHES[self.kind], *_DROPPED)

    def _next_marker(self) -> tuple[int, str | None]:
        found = [(self._pending.find(m), m) for m in self._markers() if m in self._pending]
        return min(found, default=(-1, None))

    def _switch(self, marker: str) -> None:
        new_kind = _SWITCHES[self.kind].get(marker)
        if new_kind is None:
            return
        self._thought_name = ""
        if new_kind == "call" or self.kind == "call":
            self.on_delta("call", marker)
        self.kind = new_kind
        self._thought_start = new_kind == "thinking"

    def _emit(self, text: str) -> None:
        if self._thought_start and text:
            # The channel name follows the opening marker; it is markup, not thought.
            self._thought_name += text
            if _THOUGHT_NAME.startswith(self._thought_name) and len(self._thought_name) < len(_THOUGHT_NAME):
                return
            text = self._thought_name.removeprefix(_THOUGHT_NAME)
            self._thought_name = ""
            self._thought_start = False
        if text:
            self.on_delta(self.kind, text)


def _marker_prefix_length(text: str, markers: tuple[str, ...]) -> int:
    """Return the length of the longest end of `text` that is the start of some marker."""
    longest = 0
    for marker in markers:
        for length in range(min(len(marker) - 1, len(text)), longest, -1):
            if text.endswith(marker[:length]):
                longest = length
                break
    return longest
