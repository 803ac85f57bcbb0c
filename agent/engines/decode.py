"""The decode loop of the in-process engine: free text, and constrained decoding only inside tool calls.

Outside a call every token is sampled freely. Once the text reaches the format's `call_start`, or the
engine prefills it because a call is required, each sampled token is checked with the call
constraint. A rejected token is replaced by the best-ranked token the constraint accepts, so no
whole-vocabulary grammar is evaluated per token.
"""

from __future__ import annotations

import codecs
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from agent.chat.format import CallConstraint, ChatFormat
from agent.chat.messages import ToolSpec
from agent.engines.base import DeltaCallback
from agent.engines.llamacpp_native import NativeModel
from agent.engines.prompt_cache import PromptCache
from agent.engines.sampling import Sampler, ranked_tokens

logger = logging.getLogger(__name__)

# Calls one reply may hold before generation stops: a base or confused model can loop on calls.
MAX_CALLS_PER_REPLY = 8
# Gemma 4's thought channel: with thinking on, a required call is prefilled after it closes.
THOUGHT_OPEN = "<|channel>"
THOUGHT_CLOSE = "<channel|>"


@dataclass
class Generation:
    """The outcome of one decode loop."""

    text: str
    finish_reason: str
    completion_tokens: int
    constrained_tokens: int
    calls: int
    first_token_at: float
    last_token_at: float


class Decoder:
    """Generates one reply from a model whose cache already contains the prompt (its last logits are ready)."""

    def __init__(
        self,
        model: NativeModel,
        cache: PromptCache,
        sampler: Sampler,
        chat_format: ChatFormat,
        tools: Sequence[ToolSpec],
        *,
        tool_choice: str,
        thinking: bool,
        max_tokens: int,
        on_delta: DeltaCallback | None,
        end_after_code_block: bool = False,
    ):
        self.model = model
        self.cache = cache
        self.sampler = sampler
        self.format = chat_format
        self.tools = list(tools)
        self.tool_choice = tool_choice if self.tools else "none"
        self.thinking = thinking
        self.max_tokens = max_tokens
        self.on_delta = on_delta
        self.end_after_code_block = end_after_code_block
        self.lines_scanned = 0
        self.fence_open = False

        self.text = ""
        self.emitted = 0
        self.generated: list[int] = []
        self.pending: list[int] = []
        self.utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.constraint: CallConstraint | None = None
        self.calls = 0
        self.call_end_at = 0
        self.constrained_tokens = 0
        self.first_token_at = 0.0
        self.last_token_at = 0.0
        self.await_thought = False
        self.markers = [m for m in (*chat_format.stop, chat_format.call_start, THOUGHT_OPEN) if m]
        self.stop_length = max((len(s) for s in chat_format.stop), default=0)

    def run(self) -> Generation:
        finish = self._loop()
        self._flush(final=True)
        return Generation(
            text=self.text,
            finish_reason=finish,
            completion_tokens=len(self.generated),
            constrained_tokens=self.constrained_tokens,
            calls=self.calls,
            first_token_at=self.first_token_at,
            last_token_at=self.last_token_at,
        )

    def _loop(self) -> str:
        if self.tool_choice == "required" and not self.thinking:
            self._prefill_call()
        while True:
            if len(self.generated) >= self.max_tokens or len(self.cache.tokens) + len(self.pending) >= self.model.n_ctx:
                return "length"
            self._evaluate_pending()
            token = self._next_token()
            self.last_token_at = time.perf_counter()
            self.first_token_at = self.first_token_at or self.last_token_at
            if token is None:
                logger.warning("no token continues the tool call; the reply ends here")
                return "stop"
            if self._should_prefill_instead(token):
                self._prefill_call()
                continue
            if self.constraint is None and self.model.is_end_of_generation(token):
                return "stop"
            finish = self._accept(token)
            if finish:
                return finish

    # Choosing a token

    def _next_token(self) -> int | None:
        logits = self.model.logits()
        self.sampler.penalize(logits, self.generated)
        token = self.sampler.sample(logits)
        if self.constraint is None or self._constraint_accepts(token):
            return token
        for candidate in ranked_tokens(logits):
            if candidate != token and self._constraint_accepts(candidate):
                return candidate
        return None

    def _constraint_accepts(self, token: int) -> bool:
        buffered, _ = self.utf8.getstate()
        try:
            piece = (buffered + self.model.piece(token)).decode("utf-8")
        except UnicodeDecodeError:
            # A token holding part of a character is never needed inside a call: whole-character tokens exist.
            return False
        return bool(piece) and self.constraint.accepts(piece)

    # Accepting a token

    def _accept(self, token: int) -> str:
        """Append `token` to the reply; return a finish reason when the reply ends with it."""
        self.generated.append(token)
        self.pending.append(token)
        piece = self.utf8.decode(self.model.piece(token))
        start = len(self.text)
        self.text += piece
        if self.constraint is not None:
            return self._advance_call(piece)
        if self._strayed_after_call():
            # After a call only another call may follow. Anything else (a stop token, prose, a base
            # model rambling on) ends the reply, so the call runs without waiting for more text.
            self.text = self.text[: self.call_end_at]
            return "stop"
        if self.end_after_code_block and "\n" in piece and self._code_block_closed():
            self._flush(final=True)
            return "stop"
        stop_at = self._find_stop(start)
        if stop_at >= 0:
            # The held-back tail keeps a stop string from being streamed before it is complete.
            self.text = self.text[:stop_at]
            return "stop"
        if self.tool_choice != "none" and self._call_started(start):
            return ""
        if self.await_thought and THOUGHT_CLOSE in self.text:
            self.await_thought = False
            self._flush()
            self._prefill_call()
            return ""
        self._flush()
        return ""

    def _advance_call(self, piece: str) -> str:
        self.constrained_tokens += 1
        self.constraint.feed(piece)
        self._flush(kind="call")
        if not self.constraint.done:
            return ""
        self.constraint = None
        self.calls += 1
        self.call_end_at = len(self.text)
        return "stop" if self.calls >= MAX_CALLS_PER_REPLY else ""

    def _code_block_closed(self) -> bool:
        """Scan the lines completed since the last call; True once a fenced block has opened and closed."""
        end = self.text.rfind("\n")
        for line in self.text[self.lines_scanned:end].split("\n"):
            stripped = line.strip()
            if stripped.startswith("```") and (not self.fence_open or stripped == "```"):
                if self.fence_open:
                    return True
                self.fence_open = True
        self.lines_scanned = end + 1
        return False

    def _strayed_after_call(self) -> bool:
        if not self.calls:
            return False
        tail = self.text[self.call_end_at:].lstrip()
        marker = self.format.call_start
        return bool(tail) and not (marker.startswith(tail) or tail.startswith(marker))

    def _find_stop(self, start: int) -> int:
        if not self.stop_length:
            return -1
        window_start = max(0, start - self.stop_length + 1)
        found = [self.text.find(stop, window_start) for stop in self.format.stop if stop]
        found = [index for index in found if index >= 0]
        return min(found) if found else -1

    def _call_started(self, start: int) -> bool:
        marker = self.format.call_start
        index = self.text.find(marker, max(0, start - len(marker) + 1))
        if index < 0:
            return False
        self._flush(upto=index)
        self._begin_call()
        rest = self.text[index + len(marker):]
        if rest and self.constraint.accepts(rest):
            self.constraint.feed(rest)
        elif rest:
            logger.debug("text after the call start is not valid call text: %r", rest)
        self._flush(kind="call")
        return True

    # Prefilling a required call

    def _should_prefill_instead(self, token: int) -> bool:
        """With thinking on, a required reply may open a thought channel first; anything else becomes the call."""
        if self.tool_choice != "required" or not self.thinking or self.generated or self.calls or self.constraint:
            return False
        if self.await_thought:
            return False
        if self.model.piece(token).decode("utf-8", errors="replace").startswith(THOUGHT_OPEN):
            self.await_thought = True
            return False
        return True

    def _prefill_call(self) -> None:
        marker = self.format.call_start
        self.pending.extend(self.model.tokenize(marker))
        self._evaluate_pending()
        self.text += marker
        self._begin_call()
        self._flush(kind="call")

    def _begin_call(self) -> None:
        self.constraint = self.format.call_constraint(self.tools)

    def _evaluate_pending(self) -> None:
        if self.pending:
            self.model.evaluate(self.pending)
            self.cache.append(self.pending)
            self.pending = []

    # Streaming

    def _flush(self, *, kind: str | None = None, upto: int | None = None, final: bool = False) -> None:
        """Send the text not yet streamed, keeping back a tail that may still grow into a stop string or marker."""
        end = len(self.text) if upto is None else upto
        if not final and kind is None and upto is None:
            end -= self._held_back()
        if end <= self.emitted:
            return
        chunk = self.text[self.emitted:end]
        self.emitted = end
        if self.on_delta is not None:
            self.on_delta(kind or self._kind(), chunk)

    def _held_back(self) -> int:
        tail = self.text[self.emitted:]
        for size in range(min(len(tail), max((len(m) for m in self.markers), default=0)), 0, -1):
            if any(marker.startswith(tail[-size:]) for marker in self.markers):
                return size
        return 0

    def _kind(self) -> str:
        if self.constraint is not None:
            return "call"
        return "thinking" if self.text.rfind(THOUGHT_OPEN) > self.text.rfind(THOUGHT_CLOSE) else "text"
