"""Prefix reuse of the KV cache across turns, correct for sliding-window attention.

With a sliding-window (SWA) cache of normal size, the SWA layers keep only the last `window` positions.
Rewinding the sequence to position `n` is then safe only while the cells the next token attends to
(`n - window` .. `n - 1`) are still there. A deeper rewind would silently attend to missing cells, so
the cache restores the newest checkpoint (a copy of the SWA cells saved at an earlier turn boundary)
at or below `n`, or re-evaluates the prompt from the start.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

logger = logging.getLogger(__name__)

# Checkpoints kept per engine: each is a copy of the SWA cells, about window x layers x KV width.
MAX_CHECKPOINTS = 4


class CacheBackend(Protocol):
    """The KV-cache operations of `NativeModel` this module uses."""

    def remove_from(self, position: int) -> None: ...

    def clear(self) -> None: ...

    def position_min(self) -> int: ...

    def save_window(self) -> bytes: ...

    def restore_window(self, state: bytes) -> bool: ...


@dataclass
class Checkpoint:
    """The SWA cells after the first `len(tokens)` tokens of the sequence."""

    tokens: tuple[int, ...]
    state: bytes


def common_prefix(left: list[int] | tuple[int, ...], right: list[int] | tuple[int, ...]) -> int:
    """Return the length of the longest common prefix of two token lists."""
    limit = min(len(left), len(right))
    for index in range(limit):
        if left[index] != right[index]:
            return index
    return limit


class PromptCache:
    """Tracks which tokens the KV cache contains and prepares it for the next prompt."""

    def __init__(self, backend: CacheBackend, window: int):
        """`window` is the sliding window in tokens, 0 when every cached position stays (no SWA or swa_full)."""
        self.backend = backend
        self.window = window
        self.tokens: list[int] = []
        self.checkpoints: list[Checkpoint] = []

    def prepare(self, prompt: list[int]) -> int:
        """Make the cache hold a prefix of `prompt` and return its length: the tokens that need no evaluation.

        At least the last prompt token is always left to evaluate, because its logits start generation.
        """
        reuse = min(common_prefix(self.tokens, prompt), len(prompt) - 1)
        if reuse == len(self.tokens):
            return reuse
        if self._can_rewind_to(reuse):
            self._rewind(reuse)
            return reuse
        return self._restore_checkpoint(prompt, reuse)

    def _can_rewind_to(self, position: int) -> bool:
        if self.window <= 0:
            return True
        oldest = self.backend.position_min()
        return oldest < 0 or oldest <= max(0, position - self.window)

    def _rewind(self, position: int) -> None:
        self.backend.remove_from(position)
        del self.tokens[position:]
        self.checkpoints = [c for c in self.checkpoints if len(c.tokens) <= position]

    def _restore_checkpoint(self, prompt: list[int], limit: int) -> int:
        for checkpoint in reversed(self.checkpoints):
            size = len(checkpoint.tokens)
            if size <= limit and tuple(prompt[:size]) == checkpoint.tokens and self.backend.restore_window(checkpoint.state):
                logger.debug("restored the KV checkpoint at %d tokens (common prefix %d)", size, limit)
                self._rewind(size)
                return size
        logger.debug("the common prefix of %d tokens lies behind the sliding window; re-evaluating the prompt", limit)
        self.reset()
        return 0

    def append(self, tokens: list[int]) -> None:
        """Record tokens just evaluated into the cache."""
        self.tokens.extend(tokens)

    def checkpoint(self) -> None:
        """Save the SWA cells at the current length, when the cache has a sliding window."""
        if self.window <= 0 or not self.tokens:
            return
        if self.checkpoints and len(self.checkpoints[-1].tokens) == len(self.tokens):
            return
        self.checkpoints.append(Checkpoint(tuple(self.tokens), self.backend.save_window()))
        del self.checkpoints[:-MAX_CHECKPOINTS]

    def reset(self) -> None:
        """Empty the cache and forget every checkpoint."""
        self.backend.clear()
        self.tokens.clear()
        self.checkpoints.clear()
