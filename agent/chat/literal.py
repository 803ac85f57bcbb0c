"""Keep conversation text that spells a special token from becoming that token.

The in-process engine tokenizes the rendered prompt with special-token markup parsed, which the turn
and call markers need. A file, a command's output or a user message may contain the same text
(`<turn|>`, `<|im_end|>`, `<|"|>`). Parsed as markup, it would end a turn or a string in the middle
of the content. Such text is marked in the messages before rendering, and the marked spans of the
rendered prompt are tokenized as plain text. Text that spells no special token is left as it is, so the
prompt of an ordinary conversation is the same with or without this step.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from agent.chat.messages import Message

# Marks are a pair of private-use characters that occur in no message, chosen per prompt.
_PRIVATE_USE = re.compile("[\ue000-\uf8ff]")
_FIRST_MARK = 0xE000
_LAST_MARK = 0xF8FF
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


@dataclass(frozen=True)
class Marks:
    """The two characters that open and close a span of plain text in a rendered prompt."""

    open: str
    close: str

    def wrap(self, text: str) -> str:
        """Mark `text` to be tokenized as plain text.

        Whitespace at its ends stays outside the mark, so a chat format that strips a message strips
        the same characters as before.
        """
        core = text.strip()
        if not core:
            return text
        lead = text[: len(text) - len(text.lstrip())]
        trail = text[len(text.rstrip()):]
        return f"{lead}{self.open}{core}{self.close}{trail}"


def mark_messages(messages: Sequence[Message], spells_special: Callable[[str], bool]) -> tuple[list[Message], Marks | None]:
    """Return the messages with each text that spells a special token marked, and the marks used.

    The texts are message contents and call argument strings. When none needs marking, the marks are
    None and the messages stay as they are.
    """
    texts = [text for message in messages for text in _texts(message)]
    if not any(spells_special(text) for text in texts):
        return list(messages), None
    marks = _free_marks(texts)
    marked = []
    for message in messages:
        content = marks.wrap(message.content) if spells_special(message.content) else message.content
        calls = [
            dataclasses.replace(call, arguments=_mark_value(call.arguments, spells_special, marks))
            for call in message.tool_calls
        ]
        marked.append(dataclasses.replace(message, content=content, tool_calls=calls))
    return marked, marks


def _texts(message: Message) -> list[str]:
    texts = [message.content]
    pending: list[Any] = [call.arguments for call in message.tool_calls]
    while pending:
        value = pending.pop()
        if isinstance(value, str):
            texts.append(value)
        elif isinstance(value, dict):
            pending.extend(value.values())
        elif isinstance(value, (list, tuple)):
            pending.extend(value)
    return texts


def _free_marks(texts: Sequence[str]) -> Marks:
    """Return two private-use characters that none of `texts` contains."""
    used = {character for text in texts for character in _PRIVATE_USE.findall(text)}
    free = (chr(code) for code in range(_FIRST_MARK, _LAST_MARK + 1) if chr(code) not in used)
    # A conversation that uses all 6,400 private-use characters is not a real case.
    return Marks(next(free, "\ue000"), next(free, "\ue001"))


def _mark_value(value: Any, spells_special: Callable[[str], bool], marks: Marks) -> Any:
    if isinstance(value, str):
        return marks.wrap(value) if spells_special(value) else value
    if isinstance(value, dict):
        return {key: _mark_value(item, spells_special, marks) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_mark_value(item, spells_special, marks) for item in value]
    return value


def tokenize_marked(prompt: str, tokenize: Tokenize, marks: Marks | None) -> list[int]:
    """Tokenize a rendered prompt: marked spans as plain text, the rest with special tokens parsed.

    A chat template that cuts a message apart (keeping the text after a marker, say) can leave a mark
    without its partner. Such a mark is dropped, and the text around it is parsed as markup.
    """
    # NOTE: each part is tokenized on its own. A SentencePiece vocabulary that adds a space before the
    # first word of a text (older Llama models, not Gemma or Qwen) gets one at the start of every part.
    # Tokens a GGUF types as user-defined (Qwen's <tool_call>) are matched by llama.cpp even in plain
    # text, so they stay single tokens inside a span too.
    if marks is None:
        return list(tokenize(prompt, special=True))
    both = re.escape(marks.open + marks.close)
    span = re.compile(f"{re.escape(marks.open)}([^{both}]*){re.escape(marks.close)}")
    stray = re.compile(f"[{both}]")
    tokens: list[int] = []
    # re.split with one group alternates: text outside a span, then a span's text, and so on.
    for index, part in enumerate(span.split(prompt)):
        outside = index % 2 == 0
        text = stray.sub("", part) if outside else part
        if text:
            tokens.extend(tokenize(text, special=outside))
    return tokens
