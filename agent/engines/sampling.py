"""Token sampling in numpy: repeat penalty, temperature, top-k, top-p, seeded, plus a ranked candidate list.

A full sort or partition of a 262k-entry vocabulary costs milliseconds per token, so the sampler first
keeps only the logits close enough to the maximum to matter (a probability ratio above e**-20) and
works on those few.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

# Logits this far below the maximum (in units of temperature) have a probability ratio under e**-20,
# so dropping them changes no sampling decision in practice.
NEGLIGIBLE_LOGIT_GAP = 20.0
# Recent tokens the repeat penalty applies to (llama.cpp's `penalty_last_n` default).
REPEAT_WINDOW = 64
# Candidates tried in order before the sorted whole vocabulary is scanned.
RANKED_CANDIDATES = 64


@dataclass
class SamplingParams:
    temperature: float = 0.2
    top_k: int = 40
    top_p: float = 0.95
    repeat_penalty: float = 1.0
    seed: int = 0


class Sampler:
    """Pick the next token from a row of logits; the random generator is seeded once per sampler."""

    def __init__(self, params: SamplingParams):
        self.params = params
        self.rng = np.random.default_rng(params.seed)

    def penalize(self, logits: np.ndarray, recent: Sequence[int]) -> None:
        """Apply the repeat penalty in place to the tokens among the last `REPEAT_WINDOW` of `recent`."""
        penalty = self.params.repeat_penalty
        if penalty == 1.0 or not recent:
            return
        ids = np.unique(np.asarray(recent[-REPEAT_WINDOW:], dtype=np.int64))
        values = logits[ids]
        logits[ids] = np.where(values > 0, values / penalty, values * penalty)

    def sample(self, logits: np.ndarray) -> int:
        """Sample one token id from penalized logits."""
        temperature = self.params.temperature
        if temperature <= 0:
            return int(np.argmax(logits))
        candidates = self._nucleus(logits, temperature)
        if len(candidates) == 1:
            return int(candidates[0])
        scaled = (logits[candidates] - logits[candidates[0]]) / temperature
        probabilities = np.exp(scaled)
        probabilities /= probabilities.sum()
        return int(candidates[self.rng.choice(len(candidates), p=probabilities)])

    def _nucleus(self, logits: np.ndarray, temperature: float) -> np.ndarray:
        """Return the top-k, top-p candidate ids, best first."""
        top = float(logits.max())
        candidates = np.flatnonzero(logits >= top - NEGLIGIBLE_LOGIT_GAP * temperature)
        top_k = self.params.top_k
        if 0 < top_k < len(candidates):
            candidates = candidates[np.argpartition(-logits[candidates], top_k - 1)[:top_k]]
        candidates = candidates[np.argsort(-logits[candidates], kind="stable")]
        if self.params.top_p < 1.0 and len(candidates) > 1:
            weights = np.exp((logits[candidates] - top) / temperature)
            cumulative = np.cumsum(weights) / weights.sum()
            keep = int(np.searchsorted(cumulative, self.params.top_p)) + 1
            candidates = candidates[:keep]
        return candidates


def ranked_tokens(logits: np.ndarray, first: int = RANKED_CANDIDATES) -> Iterator[int]:
    """Yield token ids best first: the top `first` from a partial sort, then the rest of the sorted vocabulary."""
    count = min(first, len(logits))
    head = np.argpartition(-logits, count - 1)[:count]
    head = head[np.argsort(-logits[head], kind="stable")]
    yield from (int(token) for token in head)
    # Only reached when every top candidate was rejected: sort the whole vocabulary once.
    seen = set(head.tolist())
    for token in np.argsort(-logits, kind="stable"):
        if int(token) not in seen:
            yield int(token)
