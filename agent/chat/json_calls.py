"""Tool calls as JSON in `<tool_call>` tags: the text shared by formats whose model calls tools that way.

Qwen2.5 emits calls in this form natively; Gemma 3 has no tool syntax of its own, so it gets the same
form, with the declarations and instructions from `prompts/tool_calls_json.jinja` in its first turn.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from importlib import resources

from agent.chat.messages import Message, ToolCall, ToolSpec

CALL_START = "<tool_call>"
CALL_END = "</tool_call>"
RESPONSE_START = "<tool_response>"
RESPONSE_END = "</tool_response>"
INSTRUCTIONS_TEMPLATE = "tool_calls_json.jinja"


@cache
def _instructions_template():
    import jinja2

    source = resources.files("prompts").joinpath(INSTRUCTIONS_TEMPLATE).read_text(encoding="utf-8")
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=False)
    environment.filters["tojson"] = lambda value: json.dumps(value, ensure_ascii=False)
    return environment.from_string(source)


def render_instructions(tools: Sequence[ToolSpec]) -> str:
    """Return the tool declarations and the JSON call instructions, or "" when there are no tools."""
    if not tools:
        return ""
    declared = [{"name": t.name, "description": t.description, "parameters": t.parameters} for t in tools]
    return _instructions_template().render(tools=declared).strip()


def render_call(call: ToolCall) -> str:
    """Write one call exactly as the model is asked to emit it."""
    body = json.dumps({"name": call.name, "arguments": call.arguments}, ensure_ascii=False)
    return f"{CALL_START}\n{body}\n{CALL_END}"


def render_response(message: Message) -> str:
    """Write one tool result for a user turn."""
    return f'{RESPONSE_START}\n{message.content}\n{RESPONSE_END}'


def fold_for_plain_chat(messages: Sequence[Message], tools: Sequence[ToolSpec]) -> list[Message]:
    """Rewrite a conversation for a chat format with no system or tool role.

    The system text and the tool instructions open the first user turn, calls become text in the
    model turn, results become user turns, and turns of the same role merge so roles alternate.
    """
    system = [m.content.strip() for m in messages[:1] if m.role == "system"]
    preamble = "\n\n".join(part for part in [*system, render_instructions(tools)] if part)
    folded: list[Message] = []
    for message in messages[len(system):]:
        role, text = _plain_turn(message)
        if folded and folded[-1].role == role:
            folded[-1].content = f"{folded[-1].content}\n\n{text}"
        else:
            folded.append(Message(role, text))
    if preamble:
        _prepend_to_first_user_turn(folded, preamble)
    return folded


def _plain_turn(message: Message) -> tuple[str, str]:
    if message.role == "tool":
        return "user", render_response(message)
    if message.role == "assistant":
        pieces = [message.content.strip(), *(render_call(call) for call in message.tool_calls)]
        return "assistant", "\n".join(piece for piece in pieces if piece)
    return "user", message.content.strip()


def _prepend_to_first_user_turn(folded: list[Message], preamble: str) -> None:
    if folded and folded[0].role == "user":
        folded[0].content = f"{preamble}\n\n{folded[0].content}".strip()
    else:
        folded.insert(0, Message("user", preamble))
