"""The in-process engine: a GGUF model run through llama.cpp, with prefix reuse and call-only constraints."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

from agent.chat.format import ChatFormat
from agent.chat.literal import SpecialText, mark_messages, tokenize_marked
from agent.chat.messages import Message, ToolSpec
from agent.chat.parse import parse_reply
from agent.config import Settings
from agent.engines.base import DeltaCallback, Reply, ToolChoice, Usage
from agent.engines.decode import Decoder, Generation
from agent.engines.llamacpp_native import LoadOptions, NativeModel, expert_tensor_pattern
from agent.engines.prompt_cache import PromptCache
from agent.engines.sampling import Sampler, SamplingParams
from agent.errors import EngineError, UsageError
from agent.gguf import GgufInfo, read_gguf_info

logger = logging.getLogger(__name__)


class LlamaCppEngine:
    """Runs a GGUF model in this process.

    Prompts are append-only within a run, so each turn evaluates only the tokens that follow the cached
    prefix. `chat_format` overrides the format chosen from the file's metadata.
    """

    name = "llamacpp"

    def __init__(self, settings: Settings, *, chat_format: ChatFormat | None = None):
        self.settings = settings
        self.info = read_gguf_info(settings.model)
        self.format = chat_format or _select_format(self.info)
        self.model_name = self.info.name or Path(settings.model).stem
        self.options = _load_options(settings, self.info)

        started = time.perf_counter()
        self.model = NativeModel(self.info.path, self.options)
        self.spells_special = SpecialText(self.model.tokenize)
        self.context_size = self.model.n_ctx
        window = 0 if self.options.swa_full else self.model.n_swa
        self.cache = PromptCache(self.model, window)
        self.sampler = Sampler(_sampling_params(settings))
        self.last_generation: Generation | None = None
        _log_load(self, time.perf_counter() - started)

    def reply(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec],
        *,
        tool_choice: ToolChoice = "auto",
        on_delta: DeltaCallback | None = None,
        max_tokens: int | None = None,
        allowed_tools: Sequence[str] | None = None,
        end_after_code_block: bool = False,
    ) -> Reply:
        prompt = self.tokenize_prompt(messages, tools)
        started = time.perf_counter()
        cached = self._evaluate_prompt(prompt)
        prompt_done = time.perf_counter()

        decoder = Decoder(
            self.model,
            self.cache,
            self.sampler,
            self.format,
            [tool for tool in tools if allowed_tools is None or tool.name in allowed_tools] or tools,
            tool_choice=tool_choice,
            thinking=self.settings.thinking,
            max_tokens=max_tokens or self.settings.max_reply_tokens,
            end_after_code_block=end_after_code_block,
            on_delta=on_delta,
        )
        generation = decoder.run()
        self.last_generation = generation
        usage = Usage(
            prompt_tokens=len(prompt),
            prompt_tokens_cached=cached,
            completion_tokens=generation.completion_tokens,
            constrained_tokens=generation.constrained_tokens,
            prompt_seconds=prompt_done - started,
            decode_seconds=time.perf_counter() - prompt_done,
        )
        return _build_reply(generation, tools, usage)

    def tokenize_prompt(self, messages: Sequence[Message], tools: Sequence[ToolSpec]) -> list[int]:
        """Render and tokenize the prompt for the next reply, with exactly one BOS."""
        from agent.chat.render import tokenize_prompt

        marked, marks = mark_messages(messages, self.spells_special)
        text = self.format.render(marked, tools, add_generation_prompt=True, thinking=self.settings.thinking)
        if not self.model.add_bos:
            return tokenize_marked(text, self.model.tokenize, marks)
        return tokenize_prompt(text, lambda prompt: tokenize_marked(prompt, self.model.tokenize, marks), self.model.bos)

    def count_tokens(self, messages: Sequence[Message], tools: Sequence[ToolSpec]) -> int:
        return len(self.tokenize_prompt(messages, tools))

    def close(self) -> None:
        self.model.close()

    def _evaluate_prompt(self, prompt: list[int]) -> int:
        """Bring the KV cache to the whole prompt and return how many of its tokens were reused."""
        if len(prompt) >= self.context_size:
            raise EngineError(
                f"The prompt has {len(prompt)} tokens but the context holds {self.context_size}. "
                "Raise --ctx or shorten the conversation."
            )
        cached = self.cache.prepare(prompt)
        fresh = prompt[cached:]
        self.model.evaluate(fresh)
        self.cache.append(fresh)
        # A checkpoint at each turn boundary lets the next turn rewind into this reply safely.
        self.cache.checkpoint()
        logger.debug("prompt: %d tokens, %d reused from the KV cache, %d evaluated", len(prompt), cached, len(fresh))
        return cached


def _select_format(info: GgufInfo) -> ChatFormat:
    from agent.chat.render import select_format

    return select_format(info.architecture, info.chat_template, info.bos_token, info.eos_token)


def _load_options(settings: Settings, info: GgufInfo) -> LoadOptions:
    if settings.ctx <= 0:
        raise UsageError(f"Invalid ctx {settings.ctx}: the context size must be a positive number of tokens.")
    if settings.cpu_moe < 0:
        raise UsageError(f"Invalid cpu_moe {settings.cpu_moe}: give the number of layers whose experts stay in RAM.")
    patterns = []
    if settings.cpu_moe:
        if not info.expert_count:
            logger.warning("cpu_moe=%d has no effect: %s has no expert layers", settings.cpu_moe, info.path.name)
        patterns.append(expert_tensor_pattern(settings.cpu_moe))
    return LoadOptions(
        ctx=settings.ctx,
        gpu_layers=settings.gpu_layers,
        threads=settings.threads,
        batch_size=settings.batch_size,
        flash_attn=settings.flash_attn,
        kv_type=settings.kv_type,
        swa_full=settings.swa_full,
        cpu_tensor_patterns=patterns,
    )


def _sampling_params(settings: Settings) -> SamplingParams:
    return SamplingParams(
        temperature=settings.temperature,
        top_k=settings.top_k,
        top_p=settings.top_p,
        repeat_penalty=settings.repeat_penalty,
        seed=settings.seed,
    )


def _build_reply(generation: Generation, tools: Sequence[ToolSpec], usage: Usage) -> Reply:
    truncated = generation.finish_reason == "length"
    parsed = parse_reply(generation.text, tools, truncated=truncated)
    finish = generation.finish_reason
    if finish == "stop" and parsed.calls:
        finish = "tool_calls"
    return Reply(text=generation.text, parsed=parsed, usage=usage, finish_reason=finish)


def _log_load(engine: LlamaCppEngine, seconds: float) -> None:
    info, options, model = engine.info, engine.options, engine.model
    logger.info(
        "loaded %s (%s, %s) in %.1f s: ctx %d of %d trained, sliding window %d (%s), KV %s, "
        "flash attention %s, %d threads, batch %d, GPU layers %s, format %s",
        info.path.name, info.architecture, info.quantization, seconds, model.n_ctx, info.context_length,
        model.n_swa, "full cache" if options.swa_full else "checkpointed", options.kv_type,
        "auto" if options.flash_attn else "off", model.threads, model.n_batch,
        "all" if options.gpu_layers < 0 else options.gpu_layers, engine.format.name,
    )
    for pattern in options.cpu_tensor_patterns:
        logger.info("tensors matching %s stay in system RAM", pattern)
