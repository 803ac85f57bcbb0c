"""The trajectory of a run: one JSON event per line under `<workspace>/.gemma-agent/runs/<run-id>/`."""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from agent.events import STREAM_KINDS, Event

TRAJECTORY_FILE = "trajectory.jsonl"


def new_run_id() -> str:
    """Return a sortable, unique run id such as 20261204-211503-3fa2."""
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)


class TrajectoryWriter:
    """Appends events to the trajectory file, flushing each line so an interrupted run loses nothing."""

    def __init__(self, path: Path, mask=None):
        self.path = path
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a", encoding="utf-8")
        self._mask = mask

    def __call__(self, event: Event) -> None:
        if event.kind in STREAM_KINDS or self._file.closed:
            return
        line = json.dumps(event.to_dict(), ensure_ascii=False, default=str)
        if self._mask:
            line = self._mask(line)
        self._file.write(line + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()


def read_events(path: Path) -> Iterator[dict[str, Any]]:
    """Yield the events of a trajectory file; a half-written last line (a killed run) is skipped."""
    with Path(path).open(encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if not line:
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue


def replies_for_replay(path: Path) -> list[dict[str, Any]]:
    """Turn a trajectory's engine replies into scripted-engine replies, so the run can be replayed."""
    script = []
    for event in read_events(path):
        if event.get("event") != "reply":
            continue
        entry: dict[str, Any] = {"text": event.get("text", "")}
        if event.get("structured_calls"):
            entry["tool_calls"] = event["structured_calls"]
        script.append(entry)
    return script
