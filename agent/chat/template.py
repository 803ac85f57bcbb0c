"""The chat format a GGUF file carries itself: its Jinja template (`tokenizer.chat_template`).

The template runs in a sandboxed Jinja environment with the variables Hugging Face templates expect.
Calls are in the model's native syntax where the template shows it (Gemma 4), else JSON in
`<tool_call>` tags, the form Qwen2.5 templates teach.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from agent.chat import gemma4, json_calls
from agent.chat.messages import Message, ToolSpec
from agent.errors import EngineError

logger = logging.getLogger(__name__)

# End-of-turn markers of common families; those the template mentions become stop strings.
_TURN_END_MARKERS = ("<turn|>", "<end_of_turn>", "<|im_end|>", "<|eot_id|>", "<|end|>", "</s>")


class TemplateRenderError(EngineError):
    """The model's chat template raised or failed to render."""


class TemplateFormat:
    """Renders conversations with the model's own chat template."""

    name = "template"

    def __init__(self, template: str, bos_token: str = "", eos_token: str = ""):
        self.template_source = template
        self.bos_token = bos_token
        self.eos_token = eos_token
        self.native_gemma4 = gemma4.CALL_START in template
        self.declares_tools = "tools" in _template_variables(template)
        self.knows_tool_calls = "tool_calls" in template
        self.call_start = gemma4.CALL_START if self.native_gemma4 else json_calls.CALL_START
        self.call_end = gemma4.CALL_END if self.native_gemma4 else json_calls.CALL_END
        self.stop: Sequence[str] = self._stop_strings()
        self._template = _compile(template)
        self._warned_fallback = False

    def render(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec],
        *,
        add_generation_prompt: bool = True,
        thinking: bool = False,
    ) -> str:
        """Return the prompt text as the template writes it, BOS text included where the template adds it."""
        chat, declared = self._prepare(messages, tools)
        variables = {
            "messages": chat,
            "tools": declared or None,
            "add_generation_prompt": add_generation_prompt,
            "enable_thinking": thinking,
            "bos_token": self.bos_token,
            "eos_token": self.eos_token,
        }
        try:
            prompt = self._template.render(**variables)
        except Exception as error:  # a template can raise anything: report it as the model's template failing
            raise TemplateRenderError(f"The model's chat template failed to render the conversation: {error}") from error
        if self.native_gemma4 and not _shows_last_result(prompt, messages):
            return self._render_built_in(messages, tools, add_generation_prompt, thinking)
        return prompt

    def _render_built_in(self, messages, tools, add_generation_prompt: bool, thinking: bool) -> str:
        """Render with the built-in Gemma 4 format, for a template that drops tool results."""
        # NOTE: Gemma 4 templates were tested only with one written from the format's published facts.
        # A real template that expects results in another message shape ends up here.
        if not self._warned_fallback:
            logger.warning("the chat template dropped a tool result; using the built-in Gemma 4 format")
            self._warned_fallback = True
        return gemma4.Gemma4Format().render(
            messages, tools, add_generation_prompt=add_generation_prompt, thinking=thinking
        )

    def call_constraint(self, tools: Sequence[ToolSpec]):
        from agent.chat.constrain import Gemma4CallConstraint, JsonCallConstraint

        return Gemma4CallConstraint(tools) if self.native_gemma4 else JsonCallConstraint(tools)

    def _prepare(self, messages: Sequence[Message], tools: Sequence[ToolSpec]) -> tuple[list[dict], list[dict]]:
        """Return the messages and tools as the template expects them.

        A template that declares no tools gets the JSON instructions in its first turn, and one that
        does not render tool calls gets calls and results as plain text.
        """
        if self.declares_tools and self.knows_tool_calls:
            return [_message_dict(m) for m in messages], [tool.to_openai() for tool in tools]
        if self.knows_tool_calls:
            messages = _with_instructions(messages, tools)
            return [_message_dict(m) for m in messages], []
        folded = json_calls.fold_for_plain_chat(messages, tools)
        return [_message_dict(m) for m in folded], []

    def _stop_strings(self) -> list[str]:
        stops = [marker for marker in _TURN_END_MARKERS if marker in self.template_source]
        if self.eos_token and self.eos_token not in stops:
            stops.append(self.eos_token)
        stops.append(gemma4.RESPONSE_START if self.native_gemma4 else json_calls.RESPONSE_START)
        return stops


def _shows_last_result(prompt: str, messages: Sequence[Message]) -> bool:
    """Tell whether the latest tool result made it into the prompt (or there is none)."""
    results = [m for m in messages if m.role == "tool"]
    return not results or results[-1].content.strip() in prompt


def _with_instructions(messages: Sequence[Message], tools: Sequence[ToolSpec]) -> list[Message]:
    instructions = json_calls.render_instructions(tools)
    if not instructions:
        return list(messages)
    if messages and messages[0].role == "system":
        first = Message("system", f"{messages[0].content.strip()}\n\n{instructions}")
        return [first, *messages[1:]]
    return [Message("system", instructions), *messages]


def _message_dict(message: Message) -> dict[str, Any]:
    """Return a message in the OpenAI shape templates read, with call arguments as objects."""
    data: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        data["tool_calls"] = [
            {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
            for call in message.tool_calls
        ]
    if message.role == "tool":
        data["name"] = message.name
        data["tool_call_id"] = message.tool_call_id
    return data


def _environment():
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    # The same settings as Hugging Face's apply_chat_template, which these templates are written for.
    environment = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"]
    )
    environment.filters["tojson"] = _tojson
    environment.globals["raise_exception"] = _raise_exception
    environment.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return environment


def _compile(source: str):
    from jinja2 import TemplateSyntaxError

    try:
        return _environment().from_string(source)
    except TemplateSyntaxError as error:
        raise TemplateRenderError(f"The model's chat template is not valid Jinja: {error}") from error


def _template_variables(source: str) -> set[str]:
    from jinja2 import TemplateSyntaxError, meta

    try:
        return meta.find_undeclared_variables(_environment().parse(source))
    except TemplateSyntaxError:
        return set()


def _tojson(value: Any, indent: int | None = None, ensure_ascii: bool = False, sort_keys: bool = False) -> str:
    # Jinja's own filter escapes <, > and & for HTML; chat templates need the plain JSON text.
    return json.dumps(value, indent=indent, ensure_ascii=ensure_ascii, sort_keys=sort_keys)


def _raise_exception(message: str) -> None:
    from jinja2 import TemplateError

    raise TemplateError(message)
