"""Eval results per run, per task and overall: pass@k, the JSON report and the rich table."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import reduce
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.errors import EXIT_FINISHED, EXIT_NOT_FINISHED
from agent.evals.checks import CheckReport
from agent.evals.metrics import RunMetrics

if TYPE_CHECKING:
    from rich.console import Console

MEBIBYTE = 1024 * 1024


@dataclass
class AttemptResult:
    """One run of one task in a fresh workspace, and what its checks found afterwards.

    A run passes when every check passes, whether or not the agent called finish. `error` is the
    message of a failure that stopped the agent early.
    """

    task: str
    attempt: int
    checks: CheckReport
    metrics: RunMetrics
    workspace: str
    error: str = ""

    @property
    def passed(self) -> bool:
        return self.checks.passed

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "attempt": self.attempt,
            "passed": self.passed,
            "error": self.error,
            "workspace": self.workspace,
            "first_failure": self.checks.feedback() if not self.passed else "",
            "checks": self.checks.to_dict()["results"],
            "metrics": self.metrics.to_dict(),
        }


@dataclass
class TaskResult:
    """Every run of one task. The task passes only when every run passed."""

    name: str
    attempts: list[AttemptResult]

    @property
    def passed(self) -> bool:
        return bool(self.attempts) and all(attempt.passed for attempt in self.attempts)

    @property
    def successes(self) -> int:
        return sum(attempt.passed for attempt in self.attempts)

    def pass_at(self, k: int) -> float | None:
        return pass_at_k(len(self.attempts), self.successes, k)

    @property
    def totals(self) -> RunMetrics:
        return reduce(RunMetrics.add, (attempt.metrics for attempt in self.attempts), RunMetrics())

    @property
    def first_failure(self) -> str:
        failed = next((attempt for attempt in self.attempts if not attempt.passed), None)
        if failed is None:
            return ""
        prefix = f"run {failed.attempt}: " if len(self.attempts) > 1 else ""
        error = f" (the agent stopped: {failed.error})" if failed.error else ""
        return prefix + failed.checks.feedback() + error


@dataclass
class EvalReport:
    """The results of an eval: every task, how often each ran, and how many ran at once."""

    tasks: list[TaskResult]
    repeat: int = 1
    jobs: int = 1
    workdir: str = ""
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.tasks) and all(task.passed for task in self.tasks)

    @property
    def exit_code(self) -> int:
        """0 when every task passed, 1 otherwise (the exit code of a run that did not finish)."""
        return EXIT_FINISHED if self.passed else EXIT_NOT_FINISHED

    @property
    def totals(self) -> RunMetrics:
        return reduce(RunMetrics.add, (task.totals for task in self.tasks), RunMetrics())

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "tasks_passed": sum(task.passed for task in self.tasks),
            "tasks": len(self.tasks),
            "repeat": self.repeat,
            "jobs": self.jobs,
            "workdir": self.workdir,
            "seconds": round(self.seconds, 3),
            "notes": self.notes,
            "totals": self.totals.to_dict(),
            "results": [_task_dict(task, self.repeat) for task in self.tasks],
        }


def pass_at_k(runs: int, successes: int, k: int) -> float | None:
    """Return the unbiased pass@k estimate: the chance that k of the runs, drawn without replacement, hold a pass.

    None when fewer than k runs were made.
    """
    if k < 1 or runs < k:
        return None
    if runs - successes < k:
        return 1.0
    return 1.0 - math.comb(runs - successes, k) / math.comb(runs, k)


def write_json(report: EvalReport, path: Path | str) -> None:
    """Write the report as one indented JSON document."""
    Path(path).write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")


def render_report(report: EvalReport, console: Console) -> None:
    """Print one row per task and a total row, then the first failure of each failing task."""
    from rich.markup import escape
    from rich.table import Table

    rates = [1] if report.repeat == 1 else [1, report.repeat]
    table = Table(title="Eval results", title_justify="left", caption=_caption(report), caption_justify="left")
    headers = ["Task", "Result", *(f"pass@{k}" for k in rates), "Steps", "Calls", "Refused", "Failed",
               "Edit fails", "Wall s", "Prompt eval / reused", "Decode tok", "tok/s", "Peak MiB"]
    for header in headers:
        table.add_column(header, justify="left" if header in ("Task", "Result") else "right")

    for task in report.tasks:
        result = "[green]pass[/]" if task.passed else "[red]FAIL[/]"
        if len(task.attempts) > 1:
            result += f" {task.successes}/{len(task.attempts)}"
        table.add_row(escape(task.name), result, *(_rate(task.pass_at(k)) for k in rates), *_metric_cells(task.totals))

    passed = sum(task.passed for task in report.tasks)
    table.add_section()
    table.add_row("total", f"{passed}/{len(report.tasks)} tasks", *("" for _ in rates), *_metric_cells(report.totals))
    console.print(table)

    # Failure messages quote code such as ['AS', 'KD'], which rich would otherwise read as markup.
    for task in report.tasks:
        if not task.passed:
            console.print(f"[red]{escape(task.name)}[/]: {escape(task.first_failure)}", highlight=False)
    for note in report.notes:
        console.print(f"[yellow]note[/]: {escape(note)}")


def _metric_cells(metrics: RunMetrics) -> list[str]:
    peak = f"{metrics.peak_memory_bytes / MEBIBYTE:,.0f}" if metrics.peak_memory_bytes else "-"
    return [
        str(metrics.steps),
        str(metrics.tool_calls),
        str(metrics.refused_calls),
        str(metrics.failed_calls),
        str(metrics.edit_failures),
        f"{metrics.wall_seconds:.1f}",
        f"{metrics.prompt_tokens_evaluated:,} / {metrics.prompt_tokens_cached:,}",
        f"{metrics.decode_tokens:,}",
        f"{metrics.decode_tokens_per_second:.1f}",
        peak,
    ]


def _caption(report: EvalReport) -> str:
    runs = "run" if report.repeat == 1 else "runs"
    return f"{report.repeat} {runs} per task, {report.jobs} at a time, {report.seconds:.1f} s in all; workspaces in {report.workdir}"


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _task_dict(task: TaskResult, repeat: int) -> dict[str, Any]:
    return {
        "name": task.name,
        "passed": task.passed,
        "runs": len(task.attempts),
        "successes": task.successes,
        "pass@1": task.pass_at(1),
        f"pass@{repeat}": task.pass_at(repeat),
        "first_failure": task.first_failure,
        "totals": task.totals.to_dict(),
        "attempts": [attempt.to_dict() for attempt in task.attempts],
    }
