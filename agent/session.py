"""Wires one run together: engine, workspace, sandbox, checkpoints, trajectory and the loop.

`gemma-agent build` and the eval runner both call `run_task`.
"""

from __future__ import annotations

import logging
import resource
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from agent.chat.gemma4 import CALL_START as GEMMA4_CALL_START
from agent.config import Settings
from agent.errors import EXIT_FINISHED, EXIT_INTERRUPTED, EXIT_NOT_FINISHED, UsageError
from agent.events import EventBus, EventHandler
from agent.interrupt import InterruptFlag, handle_interrupts
from agent.loop import Loop, RunResult, Verifier
from agent.resume import ResumeState, load_resume
from agent.tool import ToolContext
from agent.trajectory import TRAJECTORY_FILE, TrajectoryWriter, new_run_id
from agent.workspace import Workspace

logger = logging.getLogger(__name__)


@dataclass
class RunSummary:
    """The closing figures of a run, as shown on screen and written as the last `--json` event."""

    run_id: str
    status: str
    exit_code: int
    message: str
    steps: int
    tool_calls: int
    refused_calls: int
    failed_calls: int
    edit_failures: int
    files_written: list[str]
    prompt_tokens: int
    prompt_tokens_cached: int
    prompt_tokens_evaluated: int
    completion_tokens: int
    decode_tokens_per_second: float
    seconds: float
    peak_memory_mb: float
    trajectory: str
    workspace: str
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def create_engine(settings: Settings):
    """Build the engine the settings name. Concrete engines are imported here only, when chosen."""
    if settings.engine == "scripted":
        from agent.engines.scripted import ScriptedEngine

        if not settings.script:
            raise UsageError("--engine scripted needs --script FILE, a JSON Lines file of replies.")
        return ScriptedEngine.from_file(settings.script)
    if settings.engine == "llamacpp":
        from agent.engines.llamacpp import LlamaCppEngine

        from agent.models import resolve_model

        settings.model = str(resolve_model(settings.model, settings.model_dirs))
        return LlamaCppEngine(settings)
    if settings.engine == "openai":
        from agent.engines.openai import OpenAIEngine

        if not settings.base_url:
            raise UsageError("--engine openai needs --base-url, such as http://127.0.0.1:8080/v1.")
        return OpenAIEngine(settings)
    raise UsageError(f"Unknown engine {settings.engine!r}. Choose llamacpp, openai or scripted.")


def run_task(
    task: str,
    settings: Settings,
    workspace_dir: Path,
    handlers: list[EventHandler],
    *,
    engine=None,
    verify: Verifier | None = None,
    resume: str | None = None,
) -> RunSummary:
    """Run one task in `workspace_dir` and return its summary. Usage errors raise before anything is written.

    With `resume`, the stopped run of that id continues under a new run id, and `task` may be empty.
    """
    state = load_resume(Workspace(workspace_dir), resume) if resume else None
    task = state.task if state else task.strip()
    if not task:
        raise UsageError('The task is empty. Say what to build, e.g. gemma-agent build "Create hello.py that prints hello".')
    owns_engine = engine is None
    engine = engine or create_engine(settings)
    try:
        return _run_with_engine(task, settings, Workspace(workspace_dir), handlers, engine, verify, state)
    finally:
        if owns_engine:
            engine.close()


def _run_with_engine(task, settings, workspace, handlers, engine, verify, state: ResumeState | None) -> RunSummary:
    from agent.sandbox import create_sandbox, startup_notice
    from agent.verify import default_verifier
    from tools import default_toolset

    sandbox = create_sandbox(settings, workspace.root)
    workspace.create()
    run_id = new_run_id()
    trajectory_path = workspace.runs_dir() / run_id / TRAJECTORY_FILE
    writer = TrajectoryWriter(trajectory_path, mask=_secret_masker())
    bus = EventBus(writer, *handlers)
    try:
        start_fields = _run_start_fields(task, settings, engine, workspace, run_id, trajectory_path, sandbox)
        bus.emit("run_start", **start_fields, resumed_from=state.run_id if state else None)
        if notice := startup_notice(settings):
            bus.emit("notice", text=notice)
        checkpointer = _start_checkpoints(settings, workspace, run_id, task, bus)
        context = ToolContext(workspace, sandbox, settings)
        committer = _StepCommitter(checkpointer, run_id) if checkpointer else None
        interrupt = InterruptFlag()
        verify = verify or default_verifier(context)
        tools = default_toolset(resolve_write_mode(settings, engine))
        loop = Loop(engine, tools, context, bus, verify=verify, committer=committer, interrupt=interrupt)
        with handle_interrupts(interrupt):
            result = loop.run(task, resume=state)
        summary = _summarize(result, run_id, trajectory_path, workspace)
        _add_resume_hint(summary)
        if checkpointer:
            checkpointer.end_run(run_id, result.status)
        bus.emit("run_end", **summary.to_dict())
        return summary
    finally:
        sandbox.close()
        writer.close()


# A run that stopped for one of these reasons can usefully go on with `build --resume`.
RESUMABLE_STATUSES = frozenset({"interrupted", "max_steps", "time_limit", "script_exhausted", "error"})


def _add_resume_hint(summary: RunSummary) -> None:
    if summary.status in RESUMABLE_STATUSES:
        hint = f"Resume with: gemma-agent build --resume {summary.run_id} --workspace {summary.workspace}"
        summary.message = f"{summary.message} {hint}".strip()


def resolve_write_mode(settings: Settings, engine) -> str:
    """Pick how the model writes whole files: code blocks where its calls are JSON on our own engine.

    Measured with Qwen2.5-Coder-1.5B on the Blackjack task: asked for a page inside a JSON string, it
    wrote a skeleton with a "code goes here" comment in each of three tries. Asked for the same page as
    a code block, with the same request to include all the JavaScript, it wrote the whole page. Gemma 4's native call syntax needs no escaping inside strings, and
    a server parses calls its own way, so those keep content in the call.
    """
    if settings.write_mode != "auto":
        return settings.write_mode
    chat_format = getattr(engine, "format", None)
    if engine.name == "llamacpp" and chat_format is not None and chat_format.call_start != GEMMA4_CALL_START:
        return "blocks"
    return "calls"


def _start_checkpoints(settings, workspace, run_id, task, bus):
    if not settings.checkpoints:
        return None
    from agent.checkpoints import Checkpointer

    checkpointer = Checkpointer(workspace.root, branch=settings.branch, max_file_bytes=settings.checkpoint_max_file_bytes)
    for notice in checkpointer.begin_run(run_id, task):
        bus.emit("notice", text=notice)
    return checkpointer


class _StepCommitter:
    """Adapts the checkpointer to the loop's StepCommitter, binding the run id."""

    def __init__(self, checkpointer, run_id: str):
        self.checkpointer = checkpointer
        self.run_id = run_id

    def commit_step(self, step: int, changed: list[str], summary: str) -> dict:
        checkpoint = self.checkpointer.commit_step(self.run_id, step, changed, summary)
        return {
            "commit": checkpoint.commit,
            "committed": checkpoint.committed,
            "skipped": [{"path": path, "reason": reason} for path, reason in checkpoint.skipped],
        }


def _run_start_fields(task, settings, engine, workspace, run_id, trajectory_path, sandbox) -> dict[str, Any]:
    shown = {key: value for key, value, _ in settings.explain() if key not in ("json", "verbose")}
    return {
        "run_id": run_id,
        "task": task,
        "engine": engine.name,
        "model": engine.model_name,
        "context_size": engine.context_size,
        "workspace": str(workspace.root),
        "trajectory": str(trajectory_path),
        "sandbox": getattr(sandbox, "name", "unknown"),
        "settings": shown,
    }


def _summarize(result: RunResult, run_id: str, trajectory_path: Path, workspace: Workspace) -> RunSummary:
    totals = result.totals
    usage = totals.usage
    return RunSummary(
        run_id=run_id,
        status=result.status,
        exit_code=_exit_code(result),
        message=result.summary,
        steps=totals.steps,
        tool_calls=totals.tool_calls,
        refused_calls=totals.refused_calls,
        failed_calls=totals.failed_calls,
        edit_failures=totals.edit_failures,
        files_written=totals.files_written,
        prompt_tokens=usage.prompt_tokens,
        prompt_tokens_cached=usage.prompt_tokens_cached,
        prompt_tokens_evaluated=usage.prompt_tokens_evaluated,
        completion_tokens=usage.completion_tokens,
        decode_tokens_per_second=round(usage.decode_tokens_per_second, 2),
        seconds=round(result.seconds, 2),
        peak_memory_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        trajectory=str(trajectory_path),
        workspace=str(workspace.root),
    )


def _exit_code(result: RunResult) -> int:
    if result.status == "finished":
        return EXIT_FINISHED
    if result.status == "interrupted":
        return EXIT_INTERRUPTED
    if result.error is not None:
        return result.error.exit_code
    return EXIT_NOT_FINISHED


def _secret_masker():
    from agent.sandbox import mask_secrets

    return mask_secrets
