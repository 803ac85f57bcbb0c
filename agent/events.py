"""Events the loop emits. The loop never prints: the screen, `--json` output and the trajectory subscribe."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Event:
    """One thing that happened in a run. `kind` names it; `data` holds JSON-ready fields."""

    kind: str
    data: dict[str, Any] = field(default_factory=dict)
    time: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return {"event": self.kind, "time": round(self.time, 3), **self.data}


# Kinds too chatty for the trajectory and for --json: streamed pieces of text.
STREAM_KINDS = frozenset({"delta"})

EventHandler = Callable[[Event], None]


class EventBus:
    """Fans each event out to every subscriber in order."""

    def __init__(self, *handlers: EventHandler):
        self.handlers: list[EventHandler] = list(handlers)

    def subscribe(self, handler: EventHandler) -> None:
        self.handlers.append(handler)

    def emit(self, kind: str, /, **data: Any) -> None:
        event = Event(kind, data)
        for handler in self.handlers:
            handler(event)
