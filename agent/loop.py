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

from agent.blocks import extract_file_content, has_unclosed_fence, is_call_text
from agent.chat.messages import Message, ToolCall
from agent.context import ContextBudget
from agent.engines.base import Engine, Reply
from agent.errors import AgentError, ScriptExhausted
from agent.events import EventBus
from agent.interrupt import InterruptFlag
from agent.plan import MAX_RESTRICTED_REPLIES, PlanTracker, files_named, missing_files, plan_steps
from agent.prompts import render_prompt
from agent.repair import WRITE_TOOL, RepairPlan, Repairs
from agent.resume import NOT_RUN_RESULT, ResumeState
from agent.run_result import RunResult, RunTotals
from agent.stuck import REPEATS_BEFORE_STOP, StuckDetector, describe_step
from agent.tool import ToolContext, ToolResult, ToolSet
from agent.verify import Verification, Verifier

__all__ = ["Loop", "RunResult", "RunTotals", "StepCommitter", "Verification", "Verifier", "MAX_VERIFY_ROUNDS"]

logger = logging.getLogger(__name__)

# Each check run is one round: after each repair, after a worse file is put back, and the loop's own
# checks, so a repair can use two. The step and time limits usually end a run that cannot pass first:
# a wordfreq run of the CPU model used up 40 rounds in 26 steps and 556 seconds.
MAX_VERIFY_ROUNDS = 100
MAX_MISSING_FILE_REJECTIONS = 2
MAX_FLAWED_WRITES = 2
MAX_CALLS_PER_REPLY = 8
# Combinations of a file's earlier versions checked per round; each runs every check once.
MAX_COMBINATIONS_PER_ROUND = 6
# A plan of at most six one-line steps fits well within this; a model that rambles is cut off here.
MAX_PLAN_TOKENS = 400
# The system prompt, task, plan and start-of-work prompt that open every run.
PLAN_MESSAGES = 4
# A repair starts from the system prompt, the task and the plan.
REPAIR_KEEPS_MESSAGES = 3
ALL_CHECKS_PASSED = "Every check passed."
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
        self.last_passed = False
        self.last_verification: Verification | None = None
        self.missing_file_rejections = 0
        self.messages: list[Message] = []
        self.totals = RunTotals()
        self.verify_rounds = 0
        self.repairs = Repairs(context.workspace.root, [])
        self.repair: RepairPlan | None = None
        # Writes in a row, within one repair, that the write tool found broken (a syntax error, a placeholder).
        self.flawed_writes = 0
        # Replies so far in the current repair.
        self.repair_replies = 0
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
                if stop.status == "time_limit":
                    self._keep_best_files()
                return stop
            finished = self._step()
            if finished is not None:
                if finished.status == "checks_failed":
                    # The checks have just run on these files.
                    self._keep_best_files(self.last_verification)
                elif finished.status == "stuck":
                    self._keep_best_files()
                return finished
        self._keep_best_files()
        return RunResult("max_steps", f"Stopped after {self.settings.max_steps} steps, the step limit.")

    def _keep_best_files(self, verification: Verification | None = None) -> None:
        """Before a run stops with failing checks, put back each file whose best version scored higher."""
        if self.verify is None or not self.repairs.best:
            return
        if verification is None:
            # Checked again even when no tool reported a change: a command may have changed or deleted a file.
            verification = self._verify(quiet=True)
        if verification.passed:
            return
        restored = self.repairs.settle(verification, self._editable_files())
        if restored:
            self._put_back(restored, "the run stops; put back the best version of")

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
        details = {step.file: step.detail for step in self.plan.steps if step.file}
        self.repairs = Repairs(self.context.workspace.root, self.task_files, details)
        self._append(Message("user", self.plan.first_prompt()))
        self.protected_messages = len(self.messages)

    def _restore(self, state: ResumeState) -> None:
        """Start from a stopped run's conversation, recording it again so this run's trajectory is complete."""
        for message in state.messages:
            self._append(message)
        self.totals.steps = state.steps
        self.protected_messages = min(PLAN_MESSAGES, len(state.messages))
        self.task_files = files_named(state.task)
        # NOTE: a run stopped during a repair goes on as a normal step: the repair's best versions and
        # its reply form (in blocks mode, a code block with no call first) are not saved, so they are lost.
        self.repairs = Repairs(self.context.workspace.root, self.task_files)
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
        if self.repair is not None and self.repair.direct:
            return self._repair_in_block(self.repair)
        if self.repair is not None:
            # Like a plan step's, the limit holds for a few replies only, so a model that does not write
            # the file can still call finish.
            self.repair_replies += 1
            allowed = self.repair.allowed_tools if self.repair_replies <= MAX_RESTRICTED_REPLIES else None
        else:
            allowed = self.plan.allowed_tools(self.context.workspace.root)
        # A repair requests a sentence on the cause before the call, which a required call would cut off.
        tool_choice = "auto" if self.repair is not None else self.settings.tool_choice
        reply = self._reply(tool_choice=tool_choice, allowed_tools=allowed)
        return self._handle_calls(reply)

    def _handle_calls(self, reply: Reply) -> RunResult | None:
        """Run the calls of `reply`, checkpoint, observe problems; return the result when the run ends here."""
        step = self.totals.steps
        calls = reply.tool_calls[:MAX_CALLS_PER_REPLY]
        self.totals.refused_calls += len(reply.parsed.problems)

        changed: list[str] = []
        try:
            outcomes = self._run_calls(step, calls, changed)
            outcomes = self._fill_content_requests(outcomes, changed)
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
        note = self.plan.advance(outcomes)
        if self._checks_due():
            finished = self._check_work(ALL_CHECKS_PASSED, asked=False, note=note)
            if finished is not None:
                return finished
            note = ""
        if note:
            self._tell(note)
        return self._check_stuck(outcomes, [problem.message for problem in reply.parsed.problems])

    def _checks_due(self) -> bool:
        """Tell whether the loop verifies now, unasked: a file changed since the last check, and either
        a repair is on or every step that writes a file the task names is done and the files are there."""
        if self.verify is None or not self.changed_since_verify:
            return False
        if self.repair is not None:
            return True
        return (
            bool(self.task_files)
            and self.plan.files_done
            and not missing_files(self.context.workspace.root, self.task_files)
        )

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

    def _fill_content_requests(self, outcomes: list[Outcome], changed: list[str]) -> list[Outcome]:
        """Take the content of each file a call named (write_file in blocks mode) from the next reply."""
        filled = []
        for call, result in outcomes:
            path = result.data.get("content_request")
            if path and not self.interrupt.requested:
                result = self._receive_content(call, path)
                changed.extend(p for p in result.changed if p not in changed)
            filled.append((call, result))
        return filled

    def _receive_content(self, call: ToolCall, path: str, direct: bool = False) -> ToolResult:
        """Write the file `call` names with the code block of the next reply. `direct` means the content
        was asked for without a call from the model (a repair in blocks mode): that reply is a new step."""
        reply = self._reply(tool_choice="none", end_after_code_block=True, same_step=not direct)
        step = self.totals.steps
        if direct:
            self.totals.tool_calls += 1
            self.bus.emit("tool_call", step=step, id=call.id, name=call.name, arguments=call.arguments)
        truncated = reply.finish_reason == "length"
        # A call instead of the content is not the file: it is neither run nor written.
        answered_with_call = bool(reply.tool_calls or reply.parsed.problems) and "```" not in reply.text
        content = None if truncated or answered_with_call else extract_file_content(reply.text)
        if content is not None and is_call_text(content):
            # A call in a code block is no more the file than a bare one.
            answered_with_call, content = True, None
        if content is None:
            unclosed = not truncated and not answered_with_call and has_unclosed_fence(reply.text)
            message = render_prompt("content_missing", path=path, truncated=truncated, unclosed=unclosed, direct=direct)
            result = ToolResult(message, "no content written", ok=False)
        else:
            result = self.tools.write_content(call, content, self.context)
        self.totals.count_result(call.name, result)
        self._emit_result(step, call, result, seconds=0.0)
        self._tell(result.output)
        return result

    def _repair_in_block(self, repair: RepairPlan) -> RunResult | None:
        """Run one repair step in blocks mode: the reply contains the file the failing check is about."""
        call = ToolCall(WRITE_TOOL, {"path": repair.path}, f"repair_{self.totals.steps + 1}")
        changed: list[str] = []
        try:
            result = self._receive_content(call, repair.path, direct=True)
            changed = list(result.changed)
        finally:
            self._checkpoint(self.totals.steps, changed, [call])
        self.changed_since_verify = self.changed_since_verify or bool(changed)
        if self.interrupt.requested:
            return RunResult("interrupted", INTERRUPTED)
        if changed and not result.ok and self.flawed_writes < MAX_FLAWED_WRITES:
            # The model has just heard what is wrong with the file (a placeholder, a syntax error) and
            # writes it again in this repair, as in a normal step, instead of starting a new one.
            self.flawed_writes += 1
            self._tell(render_prompt("rewrite_in_block", path=repair.path))
            return None
        self.flawed_writes = 0
        if self._checks_due():
            finished = self._check_work(ALL_CHECKS_PASSED, asked=False)
            if finished is not None:
                return finished
        return self._check_stuck([(call, result)], [])

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

    def _checkpoint(self, step: int, changed: list[str], calls: Sequence[ToolCall], summary: str = "") -> None:
        if not changed or self.committer is None:
            return
        summary = summary or ", ".join(f"{call.name} {call.arguments.get('path', '')}".strip() for call in calls)
        checkpoint = self.committer.commit_step(step, changed, summary)
        self.bus.emit("checkpoint", step=step, **checkpoint)

    def _finish(self, finish: ToolResult) -> RunResult | None:
        summary = finish.data.get("summary", finish.display)
        if self._finish_rejected():
            return None
        if self.verify is None or (self.verify_rounds and not self.changed_since_verify and self.last_passed):
            # No checks, or they passed and no file changed since.
            return RunResult("finished", summary)
        return self._check_work(summary, asked=True)

    def _check_work(self, summary: str, *, asked: bool, note: str = "") -> RunResult | None:
        """Verify the files. On success the run ends, otherwise the model gets a message on how to go on.

        `asked` is True when the model called finish. A check the loop makes unasked ends the run
        only when passing it means the task is done. Otherwise the model gets the plan's `note` and goes on.
        """
        verification = self._verify(quiet=not asked)
        if verification.passed:
            self.repair = None
            if verification.conclusive or asked:
                return RunResult("finished", summary)
            if note:
                self._tell(note)
            return None
        rounds_left = MAX_VERIFY_ROUNDS - self.verify_rounds
        if rounds_left <= 0:
            # The run ends here, and _run puts back the best version of each file.
            return RunResult("checks_failed", f"Checks still failing after {MAX_VERIFY_ROUNDS} rounds: {verification.failure}")
        self.repair, restored = self.repairs.plan(verification, self._editable_files(), blocks=self._writes_in_blocks())
        if restored:
            self._put_back(restored, "checks got worse; put back the better version of")
            # With the better versions back, the checks run again before a repair is planned.
            return self._check_work(summary, asked=asked, note=note)
        if self.repair is None:
            self._tell(render_prompt("checks_failed", failure=verification.failure, rounds_left=rounds_left))
            return None
        if self._combine(self.repair.path):
            # A combination of earlier versions scored higher: check again, then plan the next repair.
            self.repair = None
            return self._check_work(summary, asked=asked, note=note)
        self._start_repair(self.repair)
        return None

    def _combine(self, path: str) -> bool:
        """Try the best version of `path` with one definition from an earlier version, a few per round.

        The first combination that the checks score higher is kept and committed. Returns whether one was kept.
        """
        best = self.repairs.best.get(path)
        if best is None:
            return False
        file = self.context.workspace.root / path
        editable = self._editable_files()
        tried = 0
        combination_kept = False
        try:
            for combination in self.repairs.combinations(path):
                tried += 1
                file.write_text(combination.text, encoding="utf-8")
                score = self.repairs.score(self.verify(), path, editable)
                logger.info("%s with %s from an earlier version scores %s (best %.2f)", path, combination.name, score, best.score)
                if score is not None and score > best.score:
                    notice = f"kept {path} with {combination.name} from an earlier version: the checks score it higher"
                    combination_kept = True
                    self.bus.emit("notice", text=notice)
                    summary = f"take {combination.name} from an earlier version of {path}"
                    self._checkpoint(self.totals.steps, [path], [], summary=summary)
                    self.changed_since_verify = True
                    return True
                if tried >= MAX_COMBINATIONS_PER_ROUND or self.interrupt.requested:
                    break
        finally:
            # Also when the checks crash or a second Ctrl-C arrives: a combination not chosen never stays.
            if tried and not combination_kept:
                file.write_bytes(best.content)
        return False

    def _editable_files(self) -> set[str]:
        """Return the files a repair may change or put back: those the task names or this run wrote."""
        return set(self.task_files) | set(self.totals.files_written)

    def _put_back(self, restored: list[str], notice: str) -> None:
        self.bus.emit("notice", text=f"{notice} {', '.join(restored)}")
        self._checkpoint(self.totals.steps, restored, [], summary="put back the best version so far")
        self.changed_since_verify = True

    def _writes_in_blocks(self) -> bool:
        """Tell whether write_file takes a file's content from the reply after the call (blocks write mode)."""
        tool = self.tools.get(WRITE_TOOL)
        return tool is not None and "content" not in tool.parameters.get("properties", {})

    def _start_repair(self, repair: RepairPlan) -> None:
        """Go back to the task and plan, and ask for the one file to fix."""
        self.bus.emit("repair", path=repair.path, round=self.verify_rounds)
        keep = min(REPAIR_KEEPS_MESSAGES, len(self.messages))
        del self.messages[keep:]
        self.bus.emit("rewind", length=keep)
        self._append(Message("user", repair.prompt))
        self.protected_messages = len(self.messages)
        self.stuck = StuckDetector()
        self.repair_replies = 0

    def _finish_rejected(self) -> bool:
        """Tell the model why finish cannot be accepted yet, if so: named files missing, or nothing changed."""
        missing = missing_files(self.context.workspace.root, self.task_files)
        if missing and self.missing_file_rejections < MAX_MISSING_FILE_REJECTIONS:
            # A name the task only mentions in passing would block forever, so this is rejected twice at most.
            self.missing_file_rejections += 1
            self.bus.emit("notice", text=f"finish rejected: {', '.join(missing)} not written yet")
            self._tell(render_prompt("files_missing", files=missing))
            return True
        if self.verify is not None and not self.changed_since_verify and not self.last_passed:
            # The same files would fail the same checks, so verifying again would only use up a round.
            self.bus.emit("notice", text="finish rejected: no file changed since the checks failed")
            self._tell(render_prompt("nothing_changed", failure=self.last_failure))
            return True
        return False

    def _verify(self, quiet: bool = False) -> Verification:
        """Run the verifier. With `quiet`, a verification that checked nothing is not reported."""
        verification = self.verify()
        if not verification.checked:
            # Nothing was checked (no tests yet), so this round neither counts nor marks the files verified.
            if not quiet:
                self.bus.emit("verification", passed=True, failure="", round=self.verify_rounds, details=verification.details)
            return verification
        self.verify_rounds += 1
        self.changed_since_verify = False
        self.last_failure = verification.failure
        self.last_passed = verification.passed
        self.last_verification = verification
        self.bus.emit(
            "verification",
            passed=verification.passed,
            failure=verification.failure,
            round=self.verify_rounds,
            details=verification.details,
        )
        return verification
