"""Keep conversation text that spells a special token from becoming that token.

The in-process engine tokenizes the rendered prompt with special-token markup parsed, which the turn
and call markers need. A file, a command's output or a user message may contain the same text
(`<turn|>`, `<|im_end|>`, `<|"|>`). Parsed as markup, it would end a turn or a string in the middle
of the content. Such text is marked in the messages before rendering, and the marked spans of the rendered
prompt are tokenized as plain text. Text that spells no special token is left as it is, so the
prompt of an ordinary conversation is the same with or without this step.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from typing import Any

from agent.chat.messages import Message

# Private-use characters. tokenize_marked removes them, so they never reach the model.
OPEN = "\ue000"
CLOSE = "\ue001"
_MARKS = re.compile(f"[{OPEN}{CLOSE}]")
_EDGES = re.compile(r"^(\s*)(.*?)(\s*)$", re.DOTALL)
_SPAN = re.compile(f"{OPEN}(.*?){CLOSE}", re.DOTALL)
MAX_CACHED = 4096

Tokenize = Callable[..., Sequence[int]]


class SpecialText:
    """Tells whether a text spells a special token, by tokenizing it with and without special parsing.

    `tokenize(text, special=...)` is the engine's tokenizer. Results are cached per text, because
    the same messages come back at every step of a run.
    """

    def __init__(self, tokenize: Tokenize):
        self.tokenize = tokenize
        self._results: dict[str, bool] = {}

    def __call__(self, text: str) -> bool:
        result = self._results.get(text)
        if result is None:
            result = bool(text) and list(self.tokenize(text, special=True)) != list(self.tokenize(text, special=False))
            if len(self._results) >= MAX_CACHED:
                self._results.clear()
            self._results[text] = result
        return result


def mark(text: str) -> str:
    """Mark `text` to be tokenized as plain text.

    Whitespace at its ends stays outside the mark, so a chat format that strips a message strips the
    same characters as before.
    """
    lead, core, trail = _EDGES.match(_MARKS.sub("", text)).groups()
    return f"{lead}{OPEN}{core}{CLOSE}{trail}" if core else text


def mark_messages(messages: Sequence[Message], spells_special: Callable[[str], bool]) -> list[Message]:
    """Return the messages with every content and call argument that spells a special token marked."""
    marked = []
    for message in messages:
        content = mark(message.content) if spells_special(message.content) else message.content
        calls = [
            dataclasses.replace(call, arguments=_mark_value(call.arguments, spells_special))
            for call in message.tool_calls
        ]
        marked.append(dataclasses.replace(message, content=content, tool_calls=calls))
    return marked


def _mark_value(value: Any, spells_special: Callable[[str], bool]) -> Any:
    if isinstance(value, str):
        return mark(value) if spells_special(value) else value
    if isinstance(value, dict):
        return {key: _mark_value(item, spells_special) for key, item in value.items()}
    if isinstance(value, list):
        return [_mark_value(item, spells_special) for item in value]
    return value


def tokenize_marked(prompt: str, tokenize: Tokenize) -> list[int]:
    """Tokenize a rendered prompt: marked spans as plain text, the rest with special tokens parsed.

    A chat template that cuts a message apart (keeping the text after a marker, say) can leave a mark
    without its partner. Then the marks are dropped and the whole prompt is parsed as before.
    """
    # NOTE: each part is tokenized on its own. A SentencePiece vocabulary that adds a space before the
    # first word of a text (older Llama models, not Gemma or Qwen) gets one at each marked span.
    if OPEN not in prompt and CLOSE not in prompt:
        return list(tokenize(prompt, special=True))
    outside = _SPAN.split(prompt)
    if any(OPEN in part or CLOSE in part for part in outside):
        return list(tokenize(_MARKS.sub("", prompt), special=True))
    tokens: list[int] = []
    # re.split with one group alternates: text outside a span, then a span's text, and so on.
    for index, part in enumerate(outside):
        if part:
            tokens.extend(tokenize(part, special=index % 2 == 0))
    return tokens
