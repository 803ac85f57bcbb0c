"""The steps a run works through, and which of them it has reached.

The model writes a plan first. When the task names the files it wants, the run's steps are one per
named file, in the order the task names them, then a last step to check and finish: a small model's
own plan often adds steps the task does not ask for (create a folder, set up a virtual environment). Otherwise
the steps are the numbered lines of the model's plan. After each step that did its work the loop
tells the model which step comes next; while a named file does not exist yet, only write_file may
be called, so a small model cannot wander off before the file is there.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from agent.chat.messages import ToolCall
from agent.prompts import render_prompt
from agent.tool import ToolResult

MAX_PLAN_STEPS = 8
# File names a task may spell out.
_FILE_NAME = re.compile(
    r"(?<![\w/.-])([\w-]+(?:/[\w-]+)*\.(?:py|html?|js|mjs|ts|css|json|toml|ya?ml|md|txt|sh|go|rs|c|cc|cpp|h|java|rb))\b"
)
_STEP_LINE = re.compile(r"^\s*(?:\*\*)?(?:step\s*)?\d+\s*[.):]\s*(?:\*\*)?\s*(.*\S)", re.IGNORECASE)
# A task's parts: paragraphs, and items of a top-level numbered list.
_PART_START = re.compile(r"^(?:\s*$|\d+[.)]\s)")
WRITE_TOOL = "write_file"
MAX_RESTRICTED_REPLIES = 2


@dataclass(frozen=True)
class PlanStep:
    """One step: what to do, the file it writes (if any), and the part of the task about that file."""

    text: str
    file: str = ""
    detail: str = ""


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


def plan_steps(task: str, plan_text: str) -> list[PlanStep]:
    """Return the run's steps: one per file the task names and a closing check, else the model's plan."""
    files = files_named(task)[:MAX_PLAN_STEPS - 1]
    if not files:
        return [PlanStep(text) for text in parse_plan(plan_text)]
    steps = [PlanStep(f"write {name}", name, _task_part(task, name, files)) for name in files]
    return steps + [PlanStep("check that everything works, then call finish")]


def _task_part(task: str, name: str, files: list[str]) -> str:
    """Return the parts of the task about this file alone; "" when the task has no such parts."""
    if len(files) < 2:
        return ""
    parts: list[list[str]] = [[]]
    for line in task.strip().splitlines():
        if _PART_START.match(line) and parts[-1]:
            parts.append([])
        if line.strip():
            parts[-1].append(line)
    chosen = ["\n".join(p) for p in parts if name in "\n".join(p) and not any(o in "\n".join(p) for o in files if o != name)]
    return "\n".join(chosen)


def missing_files(root: Path, names: Sequence[str]) -> list[str]:
    """Return the named files not in the workspace, at their path or, by file name, in any folder."""
    present = {path.name for path in root.rglob("*") if path.is_file() and ".git" not in path.parts}
    return [name for name in names if not (root / name).exists() and Path(name).name not in present]


def did_work(outcomes: Sequence[tuple[ToolCall, ToolResult]], step: PlanStep | None = None) -> bool:
    """Tell whether a reply did the step's work: wrote its file without error, or for a step without a
    file, wrote any file or ran a command that succeeded."""
    for call, result in outcomes:
        if not result.ok:
            continue
        if step is not None and step.file:
            if step.file in result.changed:
                return True
        elif result.changed or (call.name == "run_command" and result.data.get("exit_code") == 0):
            return True
    return False


class PlanTracker:
    """Follows the steps one at a time and words the note that names the next one."""

    def __init__(self, steps: Sequence[PlanStep]):
        self.steps = list(steps)
        self.current = 0
        self.restricted_replies = 0

    @property
    def step(self) -> PlanStep | None:
        return self.steps[self.current] if self.current < len(self.steps) else None

    @property
    def files_done(self) -> bool:
        """Tell whether every step that writes a file has done its work."""
        return all(index < self.current for index, step in enumerate(self.steps) if step.file)

    def first_prompt(self) -> str:
        step = self.step
        return render_prompt("start_work", step=step.text if step else "", detail=step.detail if step else "")

    def advance(self, outcomes: Sequence[tuple[ToolCall, ToolResult]]) -> str:
        """Move past the current step when the reply did its work; return the note for the model, or ""."""
        if self.step is None or not did_work(outcomes, self.step):
            return ""
        self.current += 1
        self.restricted_replies = 0
        if self.step is None:
            return render_prompt("plan_done")
        return render_prompt("next_step", done=self.current, number=self.current + 1, step=self.step.text, detail=self.step.detail)

    def allowed_tools(self, root: Path) -> list[str] | None:
        """Return the only tools the next reply may call, or None for all of them.

        A step's file may be a name the task only mentions in passing, so the limit holds for
        MAX_RESTRICTED_REPLIES replies of a step at most.
        """
        step = self.step
        if step is None or not step.file or self.restricted_replies >= MAX_RESTRICTED_REPLIES:
            return None
        if missing_files(root, [step.file]):
            self.restricted_replies += 1
            return [WRITE_TOOL]
        return None
