"""The Engine protocol and the reply it returns."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

from agent.chat.messages import Message, ToolCall, ToolSpec
from agent.chat.parse import ParsedReply

# "auto": the model may reply with text or calls; "required": the reply must be one or more calls;
# "none": text only (the plan turn).
ToolChoice = Literal["auto", "required", "none"]

# Streaming callback: kind is "text", "thinking" or "call", text is the new piece.
DeltaCallback = Callable[[str, str], None]


@dataclass
class Usage:
    """Token counts and timings of one reply.

    `prompt_tokens` is the whole prompt; `prompt_tokens_cached` of those were reused from the KV cache
    (or the server's prompt cache) and `prompt_tokens - prompt_tokens_cached` were evaluated.
    """

    prompt_tokens: int = 0
    prompt_tokens_cached: int = 0
    completion_tokens: int = 0
    constrained_tokens: int = 0
    prompt_seconds: float = 0.0
    decode_seconds: float = 0.0

    @property
    def prompt_tokens_evaluated(self) -> int:
        return self.prompt_tokens - self.prompt_tokens_cached

    @property
    def decode_tokens_per_second(self) -> float:
        return self.completion_tokens / self.decode_seconds if self.decode_seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Reply:
    """One model reply: the raw completion, what the parser found in it, usage and why it stopped.

    `finish_reason` is "stop" (end of turn), "length" (token limit) or "tool_calls".
    """

    text: str
    parsed: ParsedReply
    usage: Usage = field(default_factory=Usage)
    finish_reason: str = "stop"
    # Calls a server returned as objects rather than in the text; kept so a trajectory replays exactly.
    structured_calls: list[ToolCall] = field(default_factory=list)

    @property
    def tool_calls(self) -> list[ToolCall]:
        return self.parsed.calls

    @property
    def content(self) -> str:
        return self.parsed.content

    @property
    def thinking(self) -> str:
        return self.parsed.thinking


class Engine(Protocol):
    """Anything that turns a conversation into the model's next reply.

    `context_size` is the model's context window in tokens, `count_tokens` measures a prompt with the
    engine's own tokenizer (an estimate where the engine has none). `max_tokens` caps one reply; None
    means the `max_reply_tokens` setting. `allowed_tools` limits which of the declared tools this reply
    may call, where the engine can enforce it. The declarations themselves stay the same, so the
    prompt and the engine's cache of it do not change. `end_after_code_block` ends the reply once a
    fenced code block has closed (a file's content was asked for), where the engine can stop early.
    """

    name: str
    model_name: str
    context_size: int

    def reply(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec],
        *,
        tool_choice: ToolChoice = "auto",
        on_delta: DeltaCallback | None = None,
        max_tokens: int | None = None,
        allowed_tools: Sequence[str] | None = None,
        end_after_code_block: bool = False,
    ) -> Reply: ...

    def count_tokens(self, messages: Sequence[Message], tools: Sequence[ToolSpec]) -> int: ...

    def close(self) -> None: ...


def estimate_tokens(text: str) -> int:
    """Estimate a token count where no tokenizer is at hand (about four characters a token)."""
    return max(1, len(text) // 4)
