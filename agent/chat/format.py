"""The contract of a chat format: how a conversation becomes prompt text and how a call is delimited.

Concrete formats (the GGUF's own Jinja template, the built-in Gemma 3 and Gemma 4 formats) implement
`ChatFormat`; the in-process engine uses `call_start`/`call_end` and `call_constraint()` to switch
constrained decoding on only inside a tool call.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from agent.chat.messages import Message, ToolSpec


class CallConstraint(Protocol):
    """An incremental checker of the text of one tool call, from just after `call_start` to `call_end`.

    `accepts(piece)` tells, without changing state, whether the call text so far plus `piece` can still
    become a valid call of one of the tools (known name, declared argument names, right value types,
    required arguments present before the call closes). `feed(piece)` appends a piece already accepted.
    `done` is True once `call_end` has been fed and the call is complete.
    """

    def accepts(self, piece: str) -> bool: ...

    def feed(self, piece: str) -> None: ...

    @property
    def done(self) -> bool: ...


class ChatFormat(Protocol):
    """A way to render a conversation as prompt text for one model family."""

    name: str
    call_start: str
    call_end: str
    stop: Sequence[str]

    def render(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec],
        *,
        add_generation_prompt: bool = True,
        thinking: bool = False,
    ) -> str:
        """Return the whole prompt text, starting with the BOS token text where the model expects one."""
        ...

    def call_constraint(self, tools: Sequence[ToolSpec]) -> CallConstraint: ...
