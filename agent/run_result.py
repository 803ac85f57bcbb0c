"""The result of a run and the counters summed over it."""

from __future__ import annotations

from dataclasses import dataclass, field

from agent.chat.messages import Message
from agent.engines.base import Usage
from agent.errors import AgentError
from agent.tool import ToolResult


@dataclass
class RunTotals:
    """Counters summed over a run, for the summary and the eval report."""

    steps: int = 0
    tool_calls: int = 0
    refused_calls: int = 0
    failed_calls: int = 0
    edit_failures: int = 0
    compactions: int = 0
    usage: Usage = field(default_factory=Usage)
    files_written: list[str] = field(default_factory=list)

    def count_result(self, tool_name: str, result: ToolResult) -> None:
        if not result.ok:
            self.failed_calls += 1
            if tool_name == "edit_file":
                self.edit_failures += 1
        for path in result.changed:
            if path not in self.files_written:
                self.files_written.append(path)

    def add_usage(self, usage: Usage) -> None:
        for name in ("prompt_tokens", "prompt_tokens_cached", "completion_tokens", "constrained_tokens"):
            setattr(self.usage, name, getattr(self.usage, name) + getattr(usage, name))
        self.usage.prompt_seconds += usage.prompt_seconds
        self.usage.decode_seconds += usage.decode_seconds


@dataclass
class RunResult:
    """The end of a run.

    `status` is finished, checks_failed, max_steps, time_limit, context_limit, stuck, script_exhausted,
    error or interrupted.
    """

    status: str
    summary: str = ""
    totals: RunTotals = field(default_factory=RunTotals)
    seconds: float = 0.0
    error: AgentError | None = None
    messages: list[Message] = field(default_factory=list)
