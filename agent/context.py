"""The context budget: keep every prompt within the model's context window, compacting old messages when needed.

Compaction changes earlier messages, so the engine's prompt cache is lost from the first changed
message on. It therefore runs only when the next prompt would not fit, and then frees a wide margin
at once. The system prompt, the task and the plan are never touched.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace

from agent.chat.messages import Message, ToolCall, ToolSpec
from agent.errors import AgentError

logger = logging.getLogger(__name__)

# After compacting, the prompt takes at most this share of the budget, so later turns have room to grow.
COMPACTION_TARGET = 0.5
# A reply may use at most this share of the context, whatever max_reply_tokens says.
MAX_REPLY_SHARE = 0.5
KEEP_HEAD_CHARS = 400
KEEP_TAIL_CHARS = 400
# Shortening a text below this size saves too little to be worth its note.
MIN_COMPACTED_CHARS = 1200


class ContextLimitError(AgentError):
    """Even a fully compacted prompt does not fit in the context; the run stops with status context_limit."""

    status = "context_limit"


@dataclass
class Compaction:
    """What one compaction did, in tokens counted by the engine's tokenizer."""

    tokens_before: int
    tokens_after: int
    limit: int
    messages_compacted: int

    def to_dict(self) -> dict[str, int]:
        return dict(vars(self))


class ContextBudget:
    """Counts prompts with the engine's tokenizer and compacts the history before a prompt would overflow."""

    def __init__(self, engine, tools: Sequence[ToolSpec], max_reply_tokens: int):
        self.engine = engine
        self.tools = list(tools)
        reply_tokens = min(max_reply_tokens, int(engine.context_size * MAX_REPLY_SHARE))
        self.limit = engine.context_size - reply_tokens

    def count(self, messages: Sequence[Message]) -> int:
        return self.engine.count_tokens(messages, self.tools)

    def fit(self, messages: list[Message], protected: int) -> Compaction | None:
        """Compact `messages` in place when they exceed the budget; the first `protected` stay as they are.

        Returns None when the prompt already fits. Raises ContextLimitError when it cannot be made to fit.
        """
        before = self.count(messages)
        if before <= self.limit:
            return None
        target = int(self.limit * COMPACTION_TARGET)
        compacted = self._compact(messages, protected, target, before)
        after = self.count(messages)
        logger.info("compacted %d messages: %d -> %d tokens (limit %d)", compacted, before, after, self.limit)
        if after > self.limit:
            raise ContextLimitError(
                f"The prompt needs {after} tokens even with old messages shortened, but only {self.limit} fit "
                f"(context size {self.engine.context_size} minus room for the reply). Use a larger --ctx."
            )
        return Compaction(before, after, self.limit, compacted)

    def _compact(self, messages: list[Message], protected: int, target: int, tokens: int) -> int:
        """Shorten messages oldest first, tool results before the model's own calls and text, until `target` is met."""
        compacted = 0
        for roles in (("tool",), ("assistant",), ("user",)):
            for index in range(protected, len(messages)):
                if messages[index].role not in roles:
                    continue
                shortened = shorten_message(messages[index])
                if shortened is None:
                    continue
                tokens -= self.count([messages[index]]) - self.count([shortened])
                messages[index] = shortened
                compacted += 1
                if tokens <= target:
                    # The per-message deltas are an estimate; the full count decides.
                    tokens = self.count(messages)
                    if tokens <= target:
                        return compacted
        return compacted


def shorten_message(message: Message) -> Message | None:
    """Return the message with its long text and long call arguments cut, or None when nothing is long."""
    content = shorten_text(message.content)
    calls = [_shorten_call(call) for call in message.tool_calls]
    if content == message.content and all(new is old for new, old in zip(calls, message.tool_calls)):
        return None
    return replace(message, content=content, tool_calls=calls)


def _shorten_call(call: ToolCall) -> ToolCall:
    arguments = {key: shorten_text(value) if isinstance(value, str) else value for key, value in call.arguments.items()}
    if arguments == call.arguments:
        return call
    return ToolCall(call.name, arguments, call.id)


def shorten_text(text: str) -> str:
    """Keep the head and tail of a long text, cut at line breaks, with a note of what was dropped."""
    if len(text) < MIN_COMPACTED_CHARS:
        return text
    head = text[:KEEP_HEAD_CHARS]
    head = head[: head.rfind("\n") + 1] or head
    tail = text[-KEEP_TAIL_CHARS:]
    tail = tail[tail.find("\n") + 1 :] or tail
    dropped = text[len(head) : len(text) - len(tail)]
    note = (
        f"[... {len(dropped)} characters ({dropped.count(chr(10))} lines) left out here to save context; "
        "run the tool again to see them ...]"
    )
    return f"{head}{note}\n{tail}"
