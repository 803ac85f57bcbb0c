"""The planner loop: plan, then [engine reply -> tool calls -> observations]* until finish, then verify.

The loop is handed an engine, a tool set and a tool context; it imports no concrete engine or tool.
It never prints: everything it does is an event on the bus.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from agent.chat.messages import Message, ToolCall
from agent.engines.base import Engine, Reply, Usage
from agent.errors import AgentError, ScriptExhausted
from agent.events import EventBus
from agent.prompts import render_prompt
from agent.tool import ToolContext, ToolResult, ToolSet

logger = logging.getLogger(__name__)

MAX_VERIFY_ROUNDS = 3
MAX_CALLS_PER_REPLY = 8


@dataclass
class Verification:
    """The outcome of checking the work: `failure` is the first failing check's short message."""

    passed: bool
    failure: str = ""
    details: dict = field(default_factory=dict)


Verifier = Callable[[], Verification]


@dataclass
class RunTotals:
    """Counters summed over a run, for the summary and the eval report."""

    steps: int = 0
    tool_calls: int = 0
    refused_calls: int = 0
    failed_calls: int = 0
    edit_failures: int = 0
    usage: Usage = field(default_factory=Usage)
    files_written: list[str] = field(default_factory=list)

    def add_usage(self, usage: Usage) -> None:
        for name in ("prompt_tokens", "prompt_tokens_cached", "completion_tokens", "constrained_tokens"):
            setattr(self.usage, name, getattr(self.usage, name) + getattr(usage, name))
        self.usage.prompt_seconds += usage.prompt_seconds
        self.usage.decode_seconds += usage.decode_seconds


@dataclass
class RunResult:
    """How a run ended. `status` is finished, max_steps, time_limit, script_exhausted, error or interrupted."""

    status: str
    summary: str = ""
    totals: RunTotals = field(default_factory=RunTotals)
    seconds: float = 0.0
    error: AgentError | None = None
    messages: list[Message] = field(default_factory=list)


class StepCommitter:
    """What the loop needs from a checkpointer: commit the files one step changed."""

    def commit_step(self, step: int, changed: list[str], summary: str) -> dict: ...


class Loop:
    """Runs one task to its end. Limits come from the settings in the tool context."""

    def __init__(
        self,
        engine: Engine,
        tools: ToolSet,
        context: ToolContext,
        bus: EventBus,
        *,
        verify: Verifier | None = None,
        committer: StepCommitter | None = None,
    ):
        self.engine = engine
        self.tools = tools
        self.context = context
        self.bus = bus
        self.verify = verify
        self.committer = committer
        self.settings = context.settings
        self.messages: list[Message] = []
        self.totals = RunTotals()
        self.verify_rounds = 0

    def run(self, task: str) -> RunResult:
        started = time.monotonic()
        try:
            result = self._run(task, started)
        except AgentError as error:
            status = "script_exhausted" if isinstance(error, ScriptExhausted) else "error"
            result = RunResult(status, str(error), error=error)
        except KeyboardInterrupt:
            result = RunResult("interrupted", "Stopped by the user.")
        result.totals = self.totals
        result.seconds = time.monotonic() - started
        result.messages = self.messages
        return result

    def _run(self, task: str, started: float) -> RunResult:
        self.messages = [Message("system", render_prompt("system")), Message("user", render_prompt("plan", task=task))]
        plan = self._reply(tool_choice="none")
        self.bus.emit("plan", text=plan.content)
        self.messages.append(Message("user", render_prompt("start_work")))

        while self.totals.steps < self.settings.max_steps:
            if time.monotonic() - started > self.settings.max_seconds:
                return RunResult("time_limit", f"Stopped after {self.settings.max_seconds:.0f} s, the time limit.")
            finished = self._step()
            if finished is not None:
                return finished
        return RunResult("max_steps", f"Stopped after {self.settings.max_steps} steps, the step limit.")

    def _reply(self, tool_choice: str) -> Reply:
        """Ask the engine for the next reply, record it, and append it to the history."""
        self.totals.steps += 1
        step = self.totals.steps
        reply = self.engine.reply(
            self.messages,
            self.tools.specs(),
            tool_choice=tool_choice,
            on_delta=lambda kind, text: self.bus.emit("delta", step=step, kind=kind, text=text),
        )
        self.totals.add_usage(reply.usage)
        self.bus.emit(
            "reply",
            step=step,
            text=reply.text,
            content=reply.content,
            thinking=reply.thinking,
            tool_calls=[call.to_dict() for call in reply.tool_calls],
            structured_calls=[call.to_dict() for call in reply.structured_calls],
            problems=[problem.message for problem in reply.parsed.problems],
            repaired=reply.parsed.repaired,
            finish_reason=reply.finish_reason,
            usage=reply.usage.to_dict(),
        )
        calls = reply.tool_calls[:MAX_CALLS_PER_REPLY]
        self.messages.append(Message("assistant", reply.content, tool_calls=calls, thinking=reply.thinking))
        return reply

    def _step(self) -> RunResult | None:
        """One engine reply and its calls. Returns the result when the run ends in this step."""
        reply = self._reply(tool_choice=self.settings.tool_choice)
        step = self.totals.steps
        calls = reply.tool_calls[:MAX_CALLS_PER_REPLY]
        self.totals.refused_calls += len(reply.parsed.problems)

        finish: ToolResult | None = None
        changed: list[str] = []
        seen: set[str] = set()
        for call in calls:
            result = self._run_call(step, call, seen)
            changed.extend(path for path in result.changed if path not in changed)
            if result.finished:
                finish = result
        self._observe_problems(reply, calls)
        self._checkpoint(step, changed, calls)
        if finish is not None:
            return self._finish(finish)
        return None

    def _run_call(self, step: int, call: ToolCall, seen: set[str]) -> ToolResult:
        self.totals.tool_calls += 1
        self.bus.emit("tool_call", step=step, id=call.id, name=call.name, arguments=call.arguments)
        tool = self.tools.get(call.name)
        started = time.monotonic()
        if tool is not None and tool.changes_files and call.key() in seen:
            result = ToolResult(render_prompt("duplicate_call", name=call.name), "repeated call, not run again")
        else:
            result = self.tools.run(call, self.context)
        seen.add(call.key())
        self._count_result(call, result)
        self.bus.emit(
            "tool_result",
            step=step,
            id=call.id,
            name=call.name,
            ok=result.ok,
            output=result.output,
            display=result.display,
            changed=result.changed,
            seconds=round(time.monotonic() - started, 3),
        )
        self.messages.append(Message("tool", result.output, name=call.name, tool_call_id=call.id))
        return result

    def _count_result(self, call: ToolCall, result: ToolResult) -> None:
        if not result.ok:
            self.totals.failed_calls += 1
            if call.name == "edit_file":
                self.totals.edit_failures += 1
        for path in result.changed:
            if path not in self.totals.files_written:
                self.totals.files_written.append(path)

    def _observe_problems(self, reply: Reply, calls: Sequence[ToolCall]) -> None:
        """Tell the model what went wrong when calls could not be run, or when it made none."""
        problems = [problem.message for problem in reply.parsed.problems]
        if problems:
            self.messages.append(Message("user", render_prompt("call_problems", problems=problems)))
        elif not calls:
            self.messages.append(Message("user", render_prompt("no_tool_call")))

    def _checkpoint(self, step: int, changed: list[str], calls: Sequence[ToolCall]) -> None:
        if not changed or self.committer is None:
            return
        summary = ", ".join(f"{call.name} {call.arguments.get('path', '')}".strip() for call in calls)
        checkpoint = self.committer.commit_step(step, changed, summary)
        self.bus.emit("checkpoint", step=step, **checkpoint)

    def _finish(self, finish: ToolResult) -> RunResult | None:
        summary = finish.data.get("summary", finish.display)
        if self.verify is None:
            return RunResult("finished", summary)
        verification = self.verify()
        self.verify_rounds += 1
        self.bus.emit("verification", passed=verification.passed, failure=verification.failure, round=self.verify_rounds)
        if verification.passed:
            return RunResult("finished", summary)
        rounds_left = MAX_VERIFY_ROUNDS - self.verify_rounds
        if rounds_left <= 0:
            return RunResult("checks_failed", f"Checks still failing after {MAX_VERIFY_ROUNDS} rounds: {verification.failure}")
        self.messages.append(
            Message("user", render_prompt("checks_failed", failure=verification.failure, rounds_left=rounds_left))
        )
        return None
