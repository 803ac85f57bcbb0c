"""Choose the chat format for a model, and turn a rendered prompt into tokens with one BOS."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from agent.chat.format import ChatFormat
from agent.chat.gemma3 import Gemma3Format
from agent.chat.gemma4 import Gemma4Format
from agent.chat.template import TemplateFormat
from agent.errors import UsageError

logger = logging.getLogger(__name__)

BUILT_IN_FORMATS: dict[str, Callable[[], ChatFormat]] = {
    "gemma3": Gemma3Format,
    "gemma4": Gemma4Format,
}


def select_format(architecture: str, chat_template: str | None, bos_token: str, eos_token: str) -> ChatFormat:
    """Return the GGUF's own template format when the file has one, else the built-in format of its architecture.

    Raises UsageError when the architecture has no built-in format and the file carries no template.
    """
    if chat_template and chat_template.strip():
        return TemplateFormat(chat_template, bos_token=bos_token, eos_token=eos_token)
    factory = BUILT_IN_FORMATS.get(architecture)
    if factory is None:
        known = ", ".join(sorted(BUILT_IN_FORMATS))
        raise UsageError(
            f"The model file has no chat template and its architecture {architecture!r} has no built-in "
            f"chat format (built in: {known}). Use a GGUF file that carries tokenizer.chat_template."
        )
    return factory()


def tokenize_prompt(prompt: str, tokenize: Callable[[str], Sequence[int]], bos_token_id: int) -> list[int]:
    """Tokenize a rendered prompt so the token list holds exactly one BOS, at the start.

    `tokenize` is the engine's tokenizer with special tokens parsed; it may or may not add a BOS of its
    own, and a prompt that already starts with the BOS text would otherwise get a second one.
    """
    tokens = list(tokenize(prompt))
    body = [token for token in tokens if token != bos_token_id]
    extra = len(tokens) - len(body) - 1
    if extra > 0:
        # A BOS inside the text (a file that contains "<bos>") would restart the model's context.
        logger.debug("dropped %d extra BOS tokens from the prompt", extra)
    return [bos_token_id, *body]
