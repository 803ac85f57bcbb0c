"""The planner loop: plan, then [engine reply -> tool calls -> observations]* until finish, then verify.

The loop is handed an engine, a tool set and a tool context; it imports no concrete engine or tool.
It never prints: everything it does is an event on the bus. Each message it adds to the history is
recorded as a "message" event, so a stopped run can be rebuilt exactly (see agent.resume). Compaction
is not recorded that way: a resumed run compacts its history again when it needs to.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from agent.blocks import extract_file_content
from agent.chat.messages import Message, ToolCall
from agent.context import ContextBudget
from agent.engines.base import Engine, Reply
from agent.errors import AgentError, ScriptExhausted
from agent.events import EventBus
from agent.interrupt import InterruptFlag
from agent.plan import PlanTracker, files_named, missing_files, plan_steps
from agent.prompts import render_prompt
from agent.resume import NOT_RUN_RESULT, ResumeState
from agent.run_result import RunResult, RunTotals
from agent.stuck import REPEATS_BEFORE_STOP, StuckDetector, describe_step
from agent.tool import ToolContext, ToolResult, ToolSet
from agent.verify import Verification, Verifier

__all__ = ["Loop", "RunResult", "RunTotals", "StepCommitter", "Verification", "Verifier", "MAX_VERIFY_ROUNDS"]

logger = logging.getLogger(__name__)

MAX_VERIFY_ROUNDS = 5
MAX_MISSING_FILE_REJECTIONS = 2
MAX_CALLS_PER_REPLY = 8
# A plan of at most six one-line steps fits well within this; a model that rambles is cut off here.
MAX_PLAN_TOKENS = 400
# The system prompt, task, plan and start-of-work prompt that open every run.
PLAN_MESSAGES = 4
INTERRUPTED = "Stopped by Ctrl-C."

Outcome = tuple[ToolCall, ToolResult]


class StepCommitter:
    """The part of a checkpointer the loop uses: commit the files one step changed."""

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
        interrupt: InterruptFlag | None = None,
    ):
        self.engine = engine
        self.tools = tools
        self.context = context
        self.bus = bus
        self.verify = verify
        self.committer = committer
        self.interrupt = interrupt or InterruptFlag()
        self.settings = context.settings
        self.budget = ContextBudget(engine, tools.specs(), self.settings.max_reply_tokens)
        self.stuck = StuckDetector()
        self.plan = PlanTracker([])
        self.task_files: list[str] = []
        self.changed_since_verify = True
        self.last_failure = ""
        self.missing_file_rejections = 0
        self.messages: list[Message] = []
        self.totals = RunTotals()
        self.verify_rounds = 0
        # Compaction never touches the first messages: the system prompt, and the task and plan of a run.
        self.protected_messages = 1

    def run(self, task: str, resume: ResumeState | None = None) -> RunResult:
        """Run `task` to its end, or continue the stopped run `resume` describes."""
        return self._guarded(lambda started: self._run(task, resume, started))

    def _guarded(self, body: Callable[[float], RunResult]) -> RunResult:
        """Run `body`, turning our failures and a second Ctrl-C into the result, with the run's totals."""
        started = time.monotonic()
        try:
            result = body(started)
        except AgentError as error:
            status = getattr(error, "status", "script_exhausted" if isinstance(error, ScriptExhausted) else "error")
            result = RunResult(status, str(error), error=error)
        except KeyboardInterrupt:
            result = RunResult("interrupted", INTERRUPTED)
        result.totals = self.totals
        result.seconds = time.monotonic() - started
        result.messages = self.messages
        return result

    def _run(self, task: str, resume: ResumeState | None, started: float) -> RunResult:
        if resume is None:
            self._plan(task)
        else:
            self._restore(resume)
        while self.totals.steps < self.settings.max_steps:
            stop = self._stop_before_step(started)
            if stop is not None:
                return stop
            finished = self._step()
            if finished is not None:
                return finished
        return RunResult("max_steps", f"Stopped after {self.settings.max_steps} steps, the step limit.")

    def _stop_before_step(self, started: float) -> RunResult | None:
        if self.interrupt.requested:
            return RunResult("interrupted", INTERRUPTED)
        if time.monotonic() - started > self.settings.max_seconds:
            return RunResult("time_limit", f"Stopped after {self.settings.max_seconds:.0f} s, the time limit.")
        return None

    def continue_with(self, text: str) -> RunResult:
        """Add a user message to the same history and run until the model replies without a tool call,
        calls finish, or reaches a limit. The history is only appended to, so the engine's prompt cache
        is reused (`gemma-agent chat` calls this once per message).
        """
        return self._guarded(lambda started: self._continue(text, started))

    def _continue(self, text: str, started: float) -> RunResult:
        if not self.messages:
            self._append(Message("system", render_prompt("system")))
        self._tell(text)
        steps_at_start = self.totals.steps
        while self.totals.steps - steps_at_start < self.settings.max_steps:
            stop = self._stop_before_step(started)
            if stop is not None:
                return stop
            reply = self._reply(tool_choice="auto")
            if not reply.tool_calls and not reply.parsed.problems:
                return RunResult("answered", reply.content)
            finished = self._handle_calls(reply)
            if finished is not None:
                return finished
        return RunResult("max_steps", f"Stopped after {self.settings.max_steps} steps, the step limit.")

    def _plan(self, task: str) -> None:
        self._append(Message("system", render_prompt("system")))
        self._append(Message("user", render_prompt("plan", task=task, files=files_named(task))))
        self.protected_messages = len(self.messages)
        plan = self._reply(tool_choice="none", max_tokens=MAX_PLAN_TOKENS)
        self.bus.emit("plan", text=plan.content)
        self.plan = PlanTracker(plan_steps(task, plan.content))
        self.task_files = files_named(task)
        self._append(Message("user", self.plan.first_prompt()))
        self.protected_messages = len(self.messages)

    def _restore(self, state: ResumeState) -> None:
        """Start from a stopped run's conversation, recording it again so this run's trajectory is complete."""
        for message in state.messages:
            self._append(message)
        self.totals.steps = state.steps
        self.protected_messages = min(PLAN_MESSAGES, len(state.messages))
        self._tell(render_prompt("resume", status=state.status))

    def _append(self, message: Message) -> None:
        self.messages.append(message)
        self.bus.emit("message", index=len(self.messages) - 1, message=message.to_dict())

    def _tell(self, text: str) -> None:
        """Add a note for the model, joined to the last message when that is already a user turn."""
        last = self.messages[-1] if self.messages else None
        if last is not None and last.role == "user":
            text = f"{last.content}\n\n{text}"
            self.messages.pop()
        self._append(Message("user", text))

    def _reply(
        self,
        tool_choice: str,
        max_tokens: int | None = None,
        allowed_tools: list[str] | None = None,
        end_after_code_block: bool = False,
        same_step: bool = False,
    ) -> Reply:
        """Ask the engine for the next reply, record it, and append it to the history.

        `same_step` keeps the step count: a file's content, asked for by that step's call, is part of it.
        """
        self._fit_context()
        if not same_step:
            self.totals.steps += 1
        step = self.totals.steps
        reply = self.engine.reply(
            self.messages,
            self.tools.specs(),
            tool_choice=tool_choice,
            on_delta=lambda kind, text: self.bus.emit("delta", step=step, kind=kind, text=text),
            max_tokens=max_tokens,
            allowed_tools=allowed_tools,
            end_after_code_block=end_after_code_block,
        )
        self._record_reply(step, reply)
        calls = reply.tool_calls[:MAX_CALLS_PER_REPLY]
        self._append(Message("assistant", reply.content, tool_calls=calls, thinking=reply.thinking))
        return reply

    def _record_reply(self, step: int, reply: Reply) -> None:
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

    def _fit_context(self) -> None:
        protected = min(self.protected_messages, len(self.messages))
        compaction = self.budget.fit(self.messages, protected)
        if compaction is not None:
            self.totals.compactions += 1
            self.bus.emit("compaction", **compaction.to_dict())

    def _step(self) -> RunResult | None:
        """Take one engine reply and run its calls. Returns the result when the run ends in this step."""
        allowed = self.plan.allowed_tools(self.context.workspace.root)
        reply = self._reply(tool_choice=self.settings.tool_choice, allowed_tools=allowed)
        return self._handle_calls(reply)

    def _handle_calls(self, reply: Reply) -> RunResult | None:
        """Run the calls of `reply`, checkpoint, observe problems; return the result when the run ends here."""
        step = self.totals.steps
        calls = reply.tool_calls[:MAX_CALLS_PER_REPLY]
        self.totals.refused_calls += len(reply.parsed.problems)

        changed: list[str] = []
        try:
            outcomes = self._run_calls(step, calls, changed)
            outcomes = self._fill_content_requests(step, outcomes, changed)
        finally:
            # Also on a second Ctrl-C, so the files this step wrote are committed.
            self._checkpoint(step, changed, calls)
        self._observe_problems(reply, calls)
        self.changed_since_verify = self.changed_since_verify or bool(changed)
        if self.interrupt.requested:
            return RunResult("interrupted", INTERRUPTED)
        finish = next((result for _, result in outcomes if result.finished), None)
        if finish is not None:
            return self._finish(finish)
        if note := self.plan.advance(outcomes):
            self._tell(note)
        return self._check_stuck(outcomes, [problem.message for problem in reply.parsed.problems])

    def _run_calls(self, step: int, calls: Sequence[ToolCall], changed: list[str]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        seen: set[str] = set()
        for call in calls:
            if self.interrupt.requested:
                self._append(Message("tool", NOT_RUN_RESULT, name=call.name, tool_call_id=call.id))
                continue
            result = self._run_call(step, call, seen)
            changed.extend(path for path in result.changed if path not in changed)
            outcomes.append((call, result))
        return outcomes

    def _fill_content_requests(self, step: int, outcomes: list[Outcome], changed: list[str]) -> list[Outcome]:
        """Take the content of each file a call named (write_file in blocks mode) from the next reply."""
        filled = []
        for call, result in outcomes:
            path = result.data.get("content_request")
            if path and not self.interrupt.requested:
                result = self._receive_content(step, call, path)
                changed.extend(p for p in result.changed if p not in changed)
            filled.append((call, result))
        return filled

    def _receive_content(self, step: int, call: ToolCall, path: str) -> ToolResult:
        reply = self._reply(tool_choice="none", end_after_code_block=True, same_step=True)
        truncated = reply.finish_reason == "length"
        # A call instead of the content is not the file: it is neither run nor written.
        answered_with_call = bool(reply.tool_calls or reply.parsed.problems) and "```" not in reply.text
        content = None if truncated or answered_with_call else extract_file_content(reply.text)
        if content is None:
            unclosed = not truncated and not answered_with_call and "```" in reply.text
            message = render_prompt("content_missing", path=path, truncated=truncated, unclosed=unclosed)
            result = ToolResult(message, "no content written", ok=False)
        else:
            result = self.tools.write_content(call, content, self.context)
        self.totals.count_result(call.name, result)
        self._emit_result(step, call, result, seconds=0.0)
        self._tell(result.output)
        return result

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
        if not result.data.get("content_request"):
            self.totals.count_result(call.name, result)
        self._emit_result(step, call, result, seconds=time.monotonic() - started)
        self._append(Message("tool", result.output, name=call.name, tool_call_id=call.id))
        return result

    def _emit_result(self, step: int, call: ToolCall, result: ToolResult, seconds: float) -> None:
        self.bus.emit(
            "tool_result",
            step=step,
            id=call.id,
            name=call.name,
            ok=result.ok,
            output=result.output,
            display=result.display,
            changed=result.changed,
            seconds=round(seconds, 3),
        )

    def _observe_problems(self, reply: Reply, calls: Sequence[ToolCall]) -> None:
        """Tell the model what went wrong when calls could not be run, or when it made none."""
        problems = [problem.message for problem in reply.parsed.problems]
        if problems:
            self._tell(render_prompt("call_problems", problems=problems))
        elif not calls:
            self._tell(render_prompt("no_tool_call"))

    def _check_stuck(self, outcomes: list[Outcome], problems: list[str]) -> RunResult | None:
        step = describe_step(outcomes, problems)
        verdict = self.stuck.observe(step)
        if verdict == "warn":
            self.bus.emit("stuck_warning", action=step.action, repeats=self.stuck.repeats)
            self._tell(render_prompt("stuck_warning", action=step.action, times=self.stuck.repeats))
        # On the last allowed step the run ends at the step limit, and the summary names that limit.
        if verdict == "stuck" and self.totals.steps < self.settings.max_steps:
            return RunResult("stuck", f"Stopped: the model repeated {step.action} {REPEATS_BEFORE_STOP} times in a row.")
        return None

    def _checkpoint(self, step: int, changed: list[str], calls: Sequence[ToolCall]) -> None:
        if not changed or self.committer is None:
            return
        summary = ", ".join(f"{call.name} {call.arguments.get('path', '')}".strip() for call in calls)
        checkpoint = self.committer.commit_step(step, changed, summary)
        self.bus.emit("checkpoint", step=step, **checkpoint)

    def _finish(self, finish: ToolResult) -> RunResult | None:
        summary = finish.data.get("summary", finish.display)
        if self._finish_rejected():
            return None
        if self.verify is None:
            return RunResult("finished", summary)

        verification = self._verify()
        if verification.passed:
            return RunResult("finished", summary)
        rounds_left = MAX_VERIFY_ROUNDS - self.verify_rounds
        if rounds_left <= 0:
            return RunResult("checks_failed", f"Checks still failing after {MAX_VERIFY_ROUNDS} rounds: {verification.failure}")
        self._tell(render_prompt("checks_failed", failure=verification.failure, rounds_left=rounds_left))
        return None

    def _finish_rejected(self) -> bool:
        """Tell the model why finish cannot be accepted yet, if so: named files missing, or nothing changed."""
        missing = missing_files(self.context.workspace.root, self.task_files)
        if missing and self.missing_file_rejections < MAX_MISSING_FILE_REJECTIONS:
            # A name the task only mentions in passing would block forever, so this is rejected twice at most.
            self.missing_file_rejections += 1
            self.bus.emit("notice", text=f"finish rejected: {', '.join(missing)} not written yet")
            self._tell(render_prompt("files_missing", files=missing))
            return True
        if self.verify is not None and not self.changed_since_verify:
            # The same files would fail the same checks, so verifying again would only use up a round.
            self.bus.emit("notice", text="finish rejected: no file changed since the checks failed")
            self._tell(render_prompt("nothing_changed", failure=self.last_failure))
            return True
        return False

    def _verify(self) -> Verification:
        verification = self.verify()
        self.verify_rounds += 1
        self.changed_since_verify = False
        self.last_failure = verification.failure
        self.bus.emit(
            "verification",
            passed=verification.passed,
            failure=verification.failure,
            round=self.verify_rounds,
            details=verification.details,
        )
        return verification
