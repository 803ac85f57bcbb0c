"""Run eval tasks through an agent, each run in a fresh workspace, then check and report them.

`gemma-agent eval PATH` is `evaluate(PATH, settings, ...)`, then `render_report(report, console)` or
`write_json(report, path)`, then exit with `report.exit_code`. Underneath, `run_eval` takes any
callable `run_one(task, workspace) -> summary` (see `RunOne`), so tests can pass a fake agent, and
`session_runner` builds one from `agent.session.run_task`.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from agent.errors import AgentError, EngineError, UsageError
from agent.evals.checks import run_checks
from agent.evals.metrics import RunMetrics, process_peak_memory_bytes
from agent.evals.report import AttemptResult, EvalReport, TaskResult
from agent.evals.tasks import Task, load_tasks

logger = logging.getLogger(__name__)

# Runs one task in the given empty workspace folder and returns its run summary (see metrics.SUMMARY_KEYS).
RunOne = Callable[[Task, Path], Any]
# Called with each run's result as soon as its checks are done, for progress on screen.
OnAttempt = Callable[[AttemptResult], None]

WORKDIR_PREFIX = "gemma-agent-eval-"


def evaluate(
    path: Path | str | Sequence[Path | str],
    settings: Any,
    *,
    repeat: int = 1,
    jobs: int = 1,
    handlers: Sequence[Callable[[Any], None]] = (),
    workdir: Path | str | None = None,
    on_attempt: OnAttempt | None = None,
) -> EvalReport:
    """Load the tasks at `path` (one path or several) and run them with the engine the settings name.

    A scripted engine is built afresh for each run so that every run replays the script from its first
    reply. Any other engine is built once and shared, and runs overlap only if it serves concurrent requests.
    """
    from agent.session import create_engine, run_task

    paths = [path] if isinstance(path, (str, Path)) else list(path)
    tasks = [task for one in paths for task in load_tasks(one)]
    engine = None if settings.engine == "scripted" else create_engine(settings)
    try:
        runner = session_runner(run_task, settings, handlers, engine=engine)
        concurrent = bool(getattr(engine, "concurrent", False))
        return run_eval(
            tasks, runner, repeat=repeat, jobs=jobs, concurrent_requests=concurrent, workdir=workdir, on_attempt=on_attempt
        )
    finally:
        if engine is not None:
            engine.close()


def run_eval(
    tasks: Sequence[Task],
    run_one: RunOne,
    *,
    repeat: int = 1,
    jobs: int = 1,
    concurrent_requests: bool = False,
    workdir: Path | str | None = None,
    on_attempt: OnAttempt | None = None,
) -> EvalReport:
    """Run every task `repeat` times and check each run; `jobs` runs at once only if the engine serves concurrent requests.

    Each run gets its own folder under `workdir` (a new temporary folder when None), kept for inspection.
    UsageError and EngineError stop the eval, because every later run would fail the same way.
    """
    if repeat < 1 or jobs < 1:
        raise UsageError(f"repeat and jobs must be at least 1, got repeat={repeat} and jobs={jobs}.")
    _reject_repeated_names(tasks)
    folder = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix=WORKDIR_PREFIX))
    notes = []
    if jobs > 1 and not concurrent_requests:
        notes.append(f"ran 1 job at a time instead of {jobs}: the engine does not serve concurrent requests.")
        jobs = 1

    started = time.monotonic()
    plan = [(task, attempt) for task in tasks for attempt in range(1, repeat + 1)]

    def run(item: tuple[Task, int]) -> AttemptResult:
        return run_attempt(item[0], item[1], run_one, folder, on_attempt)

    if jobs == 1:
        results = [run(item) for item in plan]
    else:
        with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="eval") as pool:
            results = list(pool.map(run, plan))

    grouped = [TaskResult(task.name, [result for result in results if result.task == task.name]) for task in tasks]
    return EvalReport(grouped, repeat, jobs, str(folder), time.monotonic() - started, notes)


def run_attempt(task: Task, attempt: int, run_one: RunOne, workdir: Path, on_attempt: OnAttempt | None = None) -> AttemptResult:
    """Run the agent on `task` in a new folder, then run the task's checks there."""
    workspace = workdir / f"{_folder_name(task.name)}-{attempt}"
    workspace.mkdir(parents=True, exist_ok=False)
    logger.info("eval: task %s run %d in %s", task.name, attempt, workspace)

    started = time.monotonic()
    summary, error = _run_agent(task, workspace, run_one)
    wall_seconds = time.monotonic() - started

    metrics = RunMetrics.from_summary(summary)
    metrics.wall_seconds = metrics.wall_seconds or wall_seconds
    # NOTE: without a figure from the run, this is the peak of the whole process so far, not of this run.
    metrics.peak_memory_bytes = metrics.peak_memory_bytes or process_peak_memory_bytes()
    result = AttemptResult(task.name, attempt, run_checks(task, workspace), metrics, str(workspace), error)
    if on_attempt is not None:
        on_attempt(result)
    return result


def session_runner(
    run_task: Callable[..., Any],
    settings: Any,
    handlers: Sequence[Callable[[Any], None]] = (),
    *,
    engine: Any = None,
    verify_with_checks: bool = True,
) -> RunOne:
    """Adapt `agent.session.run_task` to `RunOne`, with each task's step and time limits.

    With `verify_with_checks` the loop verifies with the task's own checks before it may finish. With no
    `engine`, run_task builds a fresh one per run, which a scripted engine needs to replay from its start.
    """

    def run_one(task: Task, workspace: Path) -> Any:
        task_settings = dataclasses.replace(settings, max_steps=task.max_steps, max_seconds=task.max_seconds)
        if task_settings.engine == "scripted" and not task_settings.script and task.replay:
            task_settings.script = str(task.replay)
        verify = task_verifier(task, workspace) if verify_with_checks else None
        return run_task(task.prompt, task_settings, workspace, list(handlers), engine=engine, verify=verify)

    return run_one


def task_verifier(task: Task, workspace: Path) -> Callable[[], Any]:
    """Return a loop verifier that runs all the task's checks and reports the first failure in short."""
    from agent.verify import Verification

    def verify() -> Verification:
        report = run_checks(task, workspace)
        outcomes = [_outcome(result) for result in report.results]
        return Verification(report.passed, "" if report.passed else report.feedback(), report.to_dict(), outcomes)

    return verify


def _outcome(result: Any) -> Any:
    from agent.verify import CheckOutcome, mentions

    # A file the message names is the likelier culprit among those the check is about.
    named = [name for name in result.files if mentions(result.message, name)]
    files = named + [name for name in result.files if name not in named]
    message = "" if result.passed else f"Check {result.name!r} failed: {result.message}"
    return CheckOutcome(result.name, result.passed, message, files, 1.0 if result.passed else result.progress)


def _run_agent(task: Task, workspace: Path, run_one: RunOne) -> tuple[Any, str]:
    try:
        return run_one(task, workspace), ""
    except (UsageError, EngineError):
        raise
    except AgentError as error:
        logger.info("eval: task %s stopped: %s", task.name, error)
        return {"status": "error"}, str(error)


def _reject_repeated_names(tasks: Sequence[Task]) -> None:
    names = [task.name for task in tasks]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise UsageError(f"task names {repeated} appear more than once; give each task file its own name.")


def _folder_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "task"

