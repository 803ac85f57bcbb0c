"""The plan the model writes first, and which of its steps the run has reached.

A small model loses its place in a long run. After each step that did real work (wrote a file, or
ran a command that succeeded), the loop tells the model which plan step comes next.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from agent.chat.messages import ToolCall
from agent.prompts import render_prompt
from agent.tool import ToolResult

MAX_PLAN_STEPS = 8
# File names a task may spell out; the plan prompt lists them so each gets its own step.
_FILE_NAME = re.compile(
    r"(?<![\w/.-])([\w-]+(?:/[\w-]+)*\.(?:py|html?|js|mjs|ts|css|json|toml|ya?ml|md|txt|sh|go|rs|c|cc|cpp|h|java|rb))\b"
)
_STEP_LINE = re.compile(r"^\s*(?:\*\*)?(?:step\s*)?\d+\s*[.):]\s*(?:\*\*)?\s*(.*\S)", re.IGNORECASE)


def parse_plan(text: str) -> list[str]:
    """Return the numbered steps of a plan, in order; an unnumbered reply has none."""
    steps = [match.group(1) for line in text.splitlines() if (match := _STEP_LINE.match(line))]
    return steps[:MAX_PLAN_STEPS]


def files_named(task: str) -> list[str]:
    """Return the file names the task spells out, in order of first mention."""
    names: list[str] = []
    for match in _FILE_NAME.finditer(task):
        if match.group(1) not in names:
            names.append(match.group(1))
    return names


def did_work(outcomes: Sequence[tuple[ToolCall, ToolResult]]) -> bool:
    """Tell whether a step moved the task on: a file written without error, or a command that succeeded."""
    for call, result in outcomes:
        if result.ok and (result.changed or (call.name == "run_command" and result.data.get("exit_code") == 0)):
            return True
    return False


class PlanTracker:
    """Follows the plan one step at a time and words the note that names the next step."""

    def __init__(self, steps: Sequence[str]):
        self.steps = list(steps)
        self.current = 0

    def first_prompt(self) -> str:
        step = self.steps[0] if self.steps else ""
        return render_prompt("start_work", step=step)

    def advance(self, outcomes: Sequence[tuple[ToolCall, ToolResult]]) -> str:
        """Move past the current step when the reply did work; return the note for the model, or ""."""
        if not self.steps or self.current >= len(self.steps) or not did_work(outcomes):
            return ""
        self.current += 1
        if self.current >= len(self.steps):
            return render_prompt("plan_done")
        return render_prompt("next_step", done=self.current, number=self.current + 1, step=self.steps[self.current])
