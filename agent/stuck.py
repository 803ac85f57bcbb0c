"""Stuck detection: the model repeating the same step with the same outcome, over and over."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from agent.chat.messages import ToolCall
from agent.tool import ToolResult

# The model is warned when a step repeats the one before it this many times in a row...
REPEATS_BEFORE_WARNING = 2
# ...and the run stops when the repetition reaches this count despite the warning.
REPEATS_BEFORE_STOP = 3
# How many of the latest steps are compared with each new one.
RECENT_STEPS = 6
MAX_ACTION_CHARS = 160


@dataclass
class StepOutcome:
    """A step reduced to a `signature`, equal for repeats, and an `action` that describes it to the model."""

    signature: str
    action: str


def describe_step(outcomes: Sequence[tuple[ToolCall, ToolResult]], problems: Sequence[str]) -> StepOutcome:
    """Summarize a step's calls and results.

    A call that worked counts as a repeat only with the same arguments and the same output. A failing
    call counts as a repeat whenever the same tool fails with the same error, whatever its arguments.
    """
    signatures, actions = [], []
    for call, result in outcomes:
        if result.ok:
            signatures.append(f"{call.key()}\n{result.output}")
            actions.append(f"{call.name} {_brief_arguments(call)}")
        else:
            signatures.append(f"{call.name} failed\n{result.output}")
            actions.append(f"{call.name}, which fails with: {result.output.splitlines()[0] if result.output else ''}")
    for problem in problems:
        signatures.append(f"problem\n{problem}")
        actions.append(f"a call that cannot be run: {problem}")
    if not signatures:
        return StepOutcome("no tool call", "replying without a tool call")
    return StepOutcome("\n\n".join(signatures), _cut("; ".join(actions)))


def _brief_arguments(call: ToolCall) -> str:
    return " ".join(f"{key}={json.dumps(value, ensure_ascii=False)}" for key, value in call.arguments.items())


def _cut(text: str) -> str:
    return text if len(text) <= MAX_ACTION_CHARS else text[: MAX_ACTION_CHARS - 1] + "…"


class StuckDetector:
    """Counts how often the latest step's outcome occurred among the recent steps.

    Counting within a window, rather than only back-to-back, also catches a model that alternates
    between two useless steps (read a missing file, list an empty folder, read it again, ...).
    """

    def __init__(self) -> None:
        self.recent: deque[str] = deque(maxlen=RECENT_STEPS)
        self.repeats = 0

    def observe(self, outcome: StepOutcome) -> str:
        """Record a step and return "ok", "warn" (tell the model) or "stuck" (stop the run)."""
        self.recent.append(outcome.signature)
        self.repeats = self.recent.count(outcome.signature)
        if self.repeats >= REPEATS_BEFORE_STOP:
            return "stuck"
        if self.repeats == REPEATS_BEFORE_WARNING:
            return "warn"
        return "ok"
