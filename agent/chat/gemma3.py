"""The built-in Gemma 3 chat format, for GGUF files that carry no chat template.

Gemma 3 knows only user and model turns: the system text and the tool instructions fold into the
first user turn, calls are JSON in `<tool_call>` tags and results go back in a user turn.
"""

from __future__ import annotations

from collections.abc import Sequence

from agent.chat import json_calls
from agent.chat.messages import Message, ToolSpec

BOS = "<bos>"
TURN_START = "<start_of_turn>"
TURN_END = "<end_of_turn>"

_ROLES = {"user": "user", "assistant": "model"}


class Gemma3Format:
    """Renders conversations as Gemma 3 instruction-tuned models read them, with JSON tool calls."""

    name = "gemma3"
    call_start = json_calls.CALL_START
    call_end = json_calls.CALL_END
    stop: Sequence[str] = (TURN_END, TURN_START, json_calls.RESPONSE_START)

    def render(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec],
        *,
        add_generation_prompt: bool = True,
        thinking: bool = False,
    ) -> str:
        """Return the prompt text, starting with `<bos>`; Gemma 3 has no thinking mode, so `thinking` is ignored."""
        parts = [BOS]
        for message in json_calls.fold_for_plain_chat(messages, tools):
            parts.append(f"{TURN_START}{_ROLES[message.role]}\n{message.content.strip()}{TURN_END}\n")
        if add_generation_prompt:
            parts.append(f"{TURN_START}model\n")
        return "".join(parts)

    def call_constraint(self, tools: Sequence[ToolSpec]):
        from agent.chat.constrain import JsonCallConstraint

        return JsonCallConstraint(tools)
