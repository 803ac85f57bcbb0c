"""Resuming a stopped run: rebuild its conversation from the "message" events of its trajectory."""

from __future__ import annotations

from dataclasses import dataclass

from agent.chat.messages import Message, ToolCall
from agent.errors import UsageError
from agent.trajectory import TRAJECTORY_FILE, read_events
from agent.workspace import Workspace

NOT_RUN_RESULT = "Not run: the run stopped before this call."


@dataclass
class ResumeState:
    """The starting point of a resumed run: the earlier run's task, conversation, step count and end status."""

    run_id: str
    task: str
    messages: list[Message]
    steps: int
    status: str


def load_resume(workspace: Workspace, run_id: str) -> ResumeState:
    """Read run `run_id` of `workspace` back, or raise UsageError saying why it cannot be resumed."""
    path = workspace.runs_dir() / run_id / TRAJECTORY_FILE
    if not path.is_file():
        raise UsageError(f"No run {run_id!r} in {workspace.runs_dir()}. {_known_runs(workspace)}")
    events = list(read_events(path))
    start = next((event for event in events if event.get("event") == "run_start"), {})
    end = next((event for event in events if event.get("event") == "run_end"), {})
    messages = _recorded_messages(events)
    if end.get("status") == "finished":
        raise UsageError(f"Run {run_id} already finished. Start a new run for further changes.")
    if not start.get("task") or not messages:
        raise UsageError(f"Run {run_id} recorded no conversation to continue. Start it again with its task.")
    steps = max((event.get("step", 0) for event in events if event.get("event") == "reply"), default=0)
    return ResumeState(run_id, start["task"], pair_tool_results(messages), steps, end.get("status", "stopped"))


def _recorded_messages(events: list[dict]) -> list[Message]:
    """Return the conversation from the "message" events.

    A later event at the same index replaces the earlier. A "rewind" event drops every message from its length on.
    """
    by_index: dict[int, Message] = {}
    for event in events:
        if event.get("event") == "message":
            by_index[event["index"]] = Message.from_dict(event["message"])
        elif event.get("event") == "rewind":
            by_index = {index: message for index, message in by_index.items() if index < event["length"]}
    return [by_index[index] for index in sorted(by_index)]


def pair_tool_results(messages: list[Message]) -> list[Message]:
    """Give every tool call a result message, so a run stopped between its tools leaves a valid conversation."""
    paired: list[Message] = []
    pending: list[ToolCall] = []
    for message in messages:
        if message.role == "tool" and pending:
            answered = next((call for call in pending if call.id == message.tool_call_id), pending[0])
            pending.remove(answered)
        elif pending:
            paired.extend(_not_run(call) for call in pending)
            pending = []
        paired.append(message)
        if message.role == "assistant":
            pending = list(message.tool_calls)
    paired.extend(_not_run(call) for call in pending)
    return paired


def _not_run(call: ToolCall) -> Message:
    return Message("tool", NOT_RUN_RESULT, name=call.name, tool_call_id=call.id)


def _known_runs(workspace: Workspace) -> str:
    folder = workspace.runs_dir()
    runs = sorted(path.name for path in folder.iterdir() if (path / TRAJECTORY_FILE).is_file()) if folder.is_dir() else []
    if not runs:
        return "That workspace has no recorded runs; pass --workspace with the folder the run worked in."
    return "The latest runs there: " + ", ".join(runs[-5:]) + "."
