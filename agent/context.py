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
# A reply may use at most this share of the context, even when max_reply_tokens is larger.
MAX_REPLY_SHARE = 0.5
# Each pass shortens the long texts of messages with these roles, oldest first, keeping this many
# characters at each end. The first passes keep the head and tail of tool results, call arguments and
# notes. The last one, run only when those were not enough, keeps just a note of what was left out.
COMPACTION_PASSES = (
    (("tool",), 400),
    (("assistant",), 400),
    (("user",), 400),
    (("tool", "assistant"), 0),
)
# Savings are estimated at this ratio while shortening, which only decides when to count the whole
# prompt again with the engine's tokenizer: counting a lone message would need a template to accept it.
CHARS_PER_TOKEN = 4
# A text is shortened only when that saves at least this many characters beyond the note it gets.
MIN_SAVED_CHARS = 300


class ContextLimitError(AgentError):
    """Even a fully compacted prompt does not fit in the context; the run stops with status context_limit."""

    status = "context_limit"


@dataclass
class Compaction:
    """The effect of one compaction, in tokens counted by the engine's tokenizer."""

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
        for roles, keep in COMPACTION_PASSES:
            for index in range(protected, len(messages)):
                if messages[index].role not in roles:
                    continue
                shortened = shorten_message(messages[index], keep)
                if shortened is None:
                    continue
                tokens -= (_text_size(messages[index]) - _text_size(shortened)) // CHARS_PER_TOKEN
                messages[index] = shortened
                compacted += 1
                if tokens <= target:
                    tokens = self.count(messages)
                    if tokens <= target:
                        return compacted
        return compacted


def _text_size(message: Message) -> int:
    arguments = (value for call in message.tool_calls for value in call.arguments.values() if isinstance(value, str))
    return len(message.content) + sum(len(value) for value in arguments)


def shorten_message(message: Message, keep: int) -> Message | None:
    """Return the message with its long text and long call arguments cut, or None when nothing is long."""
    content = shorten_text(message.content, keep)
    calls = [_shorten_call(call, keep) for call in message.tool_calls]
    if content == message.content and all(new is old for new, old in zip(calls, message.tool_calls)):
        return None
    return replace(message, content=content, tool_calls=calls)


def _shorten_call(call: ToolCall, keep: int) -> ToolCall:
    arguments = {key: shorten_text(value, keep) if isinstance(value, str) else value for key, value in call.arguments.items()}
    if arguments == call.arguments:
        return call
    return ToolCall(call.name, arguments, call.id)


def shorten_text(text: str, keep: int) -> str:
    """Keep `keep` characters of head and tail of a long text, cut at line breaks, with a note of what was dropped."""
    if len(text) < 2 * keep + MIN_SAVED_CHARS:
        return text
    head = text[:keep]
    head = head[: head.rfind("\n") + 1] or head
    tail = text[len(text) - keep :] if keep else ""
    tail = tail[tail.find("\n") + 1 :] or tail
    dropped = text[len(head) : len(text) - len(tail)]
    note = f"[... {len(dropped)} characters ({dropped.count(chr(10))} lines) left out here to save context ...]"
    return f"{head}{note}\n{tail}" if tail else f"{head}{note}"
