"""An engine that drives any OpenAI-compatible chat server: llama-server, Ollama, LM Studio, vLLM.

Replies stream over SSE. A server that parses calls returns structured `tool_calls`, and one that
does not leaves them in the text (Gemma 4 native or JSON). Both kinds go through `parse_reply`. Messages are
sent exactly as the loop built them, so a server with a prompt cache reuses the whole earlier prefix.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Sequence
from typing import Any

from agent.chat.messages import Message, ToolCall, ToolSpec
from agent.chat.parse import CallProblem, parse_reply
from agent.config import Settings
from agent.engines.base import DeltaCallback, Reply, ToolChoice, Usage, estimate_tokens
from agent.engines.openai_http import ServerClient, ServerError
from agent.engines.openai_server import LLAMA_CPP_PYTHON, LLAMA_SERVER, OLLAMA, VLLM, ServerInfo, count_with_server, probe_server
from agent.engines.openai_stream import PartialCall, ReplyAssembler, StreamedReply
from agent.errors import EngineError, UsageError

logger = logging.getLogger(__name__)

# The prompt size the server reports may differ from our count by this fraction before we warn:
# tight when the server's own tokenizer counted, loose when ours is a four-characters-a-token estimate.
PROMPT_MISMATCH_WITH_TOKENIZER = 0.10
PROMPT_MISMATCH_WITH_ESTIMATE = 0.50
# Template markup a tokenizer-less count cannot see (turn markers, BOS) is allowed this many tokens.
PROMPT_MISMATCH_SLACK = 64
TRUNCATED_CALL_MESSAGE = (
    "Your reply reached the token limit inside a tool call, so the call was not run. "
    "Send the call again with less content, or split the file into smaller parts."
)


class OpenAIEngine:
    """Streams replies from an OpenAI-compatible server at `settings.base_url`."""

    name = "openai"
    # The server queues or batches requests itself, so the eval runner may call `reply` from several
    # threads at once. One httpx.Client is safe to share between them.
    concurrent = True

    def __init__(self, settings: Settings):
        if not settings.base_url:
            raise UsageError("--engine openai needs --base-url, such as http://127.0.0.1:8080/v1.")
        self.settings = settings
        self.client = ServerClient(settings, api_key=_api_key(settings))
        self.chat_url = f"{self.client.base_url}/chat/completions"
        self.server = probe_server(self.client, settings.api_model)
        self.model_name = self.server.model or settings.api_model or "default"
        self.context_size = self._choose_context_size()
        self._lock = threading.Lock()
        self._required_rejected = False
        self._mismatch_warnings = 0
        # Replies requested so far. Each request's seed adds it, so a prompt sent again (a repair that
        # requests a file afresh) gets a new sample, while a run stays repeatable from its seed.
        self._requests = 0
        logger.info(
            "Server %s (%s), model %s, context %d tokens", self.client.base_url, self.server.kind, self.model_name, self.context_size
        )

    # -- the Engine protocol ------------------------------------------------------------------------

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
        started = time.perf_counter()
        self._requests += 1
        # NOTE: allowed_tools is not enforced here: servers differ in whether they accept a named
        # tool_choice, and the loop only narrows tools to guide small models on the in-process engine.
        streamed = self._stream_reply(messages, tools, tool_choice, on_delta, max_tokens or self.settings.max_reply_tokens)
        finished = time.perf_counter()

        truncated = streamed.finish_reason == "length"
        calls, problems = _decode_calls(streamed.calls, truncated)
        parsed = parse_reply(streamed.text, tools, structured=calls, truncated=truncated)
        parsed.problems.extend(problems)
        _keep_server_ids(parsed.calls, calls)
        if streamed.reasoning:
            parsed.thinking = "\n".join(part for part in (streamed.reasoning.strip(), parsed.thinking) if part)

        usage = self._usage(streamed, messages, tools, started, finished)
        finish_reason = "tool_calls" if parsed.calls and not truncated else streamed.finish_reason or "stop"
        return Reply(text=streamed.text, parsed=parsed, usage=usage, finish_reason=finish_reason)

    def count_tokens(self, messages: Sequence[Message], tools: Sequence[ToolSpec]) -> int:
        """Count with the server's tokenizer where it has an endpoint for it, else estimate."""
        counted = self._count_with_server(messages, tools)
        return counted if counted is not None else estimate_tokens(_flat_text(messages, tools))

    def close(self) -> None:
        self.client.close()

    # -- context size -------------------------------------------------------------------------------

    def _choose_context_size(self) -> int:
        server = self.server
        served = server.loaded_context_size or server.context_size
        if "ctx" in self.settings.sources:
            if served and served < self.settings.ctx:
                logger.warning(
                    "ctx is set to %d but the server at %s serves %d tokens; prompts beyond that fail or are cut",
                    self.settings.ctx, self.client.base_url, served,
                )
            return self.settings.ctx
        if server.kind == OLLAMA and not server.loaded_context_size:
            # The model's maximum is not what Ollama allocates, so stay at our own default below it.
            _warn_ollama_context(server, self.settings.ctx)
            return min(self.settings.ctx, server.context_size or self.settings.ctx)
        if server.kind == OLLAMA:
            _warn_ollama_context(server, self.settings.ctx)
        if served:
            return served
        logger.warning(
            "The server at %s does not report its context size; assuming %d tokens (set ctx to change it)",
            self.client.base_url, self.settings.ctx,
        )
        return self.settings.ctx

    # -- the request --------------------------------------------------------------------------------

    def _stream_reply(self, messages, tools, tool_choice, on_delta, max_tokens: int) -> StreamedReply:
        choice = self._effective_tool_choice(tool_choice, tools)
        try:
            return self._stream_once(messages, tools, choice, on_delta, max_tokens)
        except ServerError as error:
            if choice != "required" or not _rejects_tool_choice(error):
                raise self._explain(error) from None
            with self._lock:
                self._required_rejected = True
            logger.warning("The server rejected tool_choice=required (%s); using auto from now on", error.server_message)
            return self._stream_once(messages, tools, "auto", on_delta, max_tokens)

    def _stream_once(self, messages, tools, tool_choice, on_delta, max_tokens: int) -> StreamedReply:
        assembler = ReplyAssembler(on_delta)
        for chunk in self.client.stream_events(self.chat_url, self._payload(messages, tools, tool_choice, max_tokens)):
            assembler.feed(chunk)
        streamed = assembler.finish()
        if streamed.finish_reason is None:
            raise EngineError(
                f"{self.chat_url} ended the stream before the reply finished (after {len(streamed.text)} characters). "
                "The server may have crashed or hit a limit: check its log."
            )
        return streamed

    def _effective_tool_choice(self, tool_choice: str, tools: Sequence[ToolSpec]) -> str:
        if tools and tool_choice == "required" and self._required_rejected:
            return "auto"
        return tool_choice

    def _payload(self, messages: Sequence[Message], tools: Sequence[ToolSpec], tool_choice: str, max_tokens: int) -> dict[str, Any]:
        settings = self.settings
        payload: dict[str, Any] = {
            "model": self.model_name,
            "messages": [to_openai_message(message) for message in messages],
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": max_tokens,
            "temperature": settings.temperature,
            "top_p": settings.top_p,
            "top_k": settings.top_k,
            "seed": settings.seed + self._requests,
        }
        if tools:
            payload["tools"] = [tool.to_openai() for tool in tools]
            payload["tool_choice"] = tool_choice
        if self.server.kind in (LLAMA_SERVER, LLAMA_CPP_PYTHON):
            payload["repeat_penalty"] = settings.repeat_penalty
            payload["cache_prompt"] = True
        if self.server.kind == VLLM:
            payload["repetition_penalty"] = settings.repeat_penalty
        if self.server.kind in (LLAMA_SERVER, VLLM):
            # Gemma 4's chat template switches its thought channel on this variable.
            payload["chat_template_kwargs"] = {"enable_thinking": settings.thinking}
        return payload

    def _explain(self, error: ServerError) -> EngineError:
        """Add what the user can do to a server error about the model name."""
        if "model" in error.server_message.lower() and error.status in (400, 404):
            listed = ", ".join(self.server.models) or "none listed"
            return EngineError(
                f"The server at {self.client.base_url} does not serve model {self.model_name!r}: "
                f"{error.server_message}. Models it lists: {listed}. Pass one with --api-model."
            )
        return error

    # -- usage and token counts ---------------------------------------------------------------------

    def _usage(self, streamed: StreamedReply, messages, tools, started: float, finished: float) -> Usage:
        reported, timings = streamed.usage, streamed.timings
        usage = Usage()
        usage.prompt_tokens = _int(reported.get("prompt_tokens"))
        usage.completion_tokens = _int(reported.get("completion_tokens"))
        details = reported.get("prompt_tokens_details") or {}
        usage.prompt_tokens_cached = _int(details.get("cached_tokens")) or _int(timings.get("cache_n"))
        if timings.get("prompt_n") is not None and not usage.prompt_tokens:
            usage.prompt_tokens = _int(timings.get("prompt_n")) + _int(timings.get("cache_n"))

        if usage.prompt_tokens:
            self._check_prompt_size(usage.prompt_tokens, messages, tools)
        else:
            usage.prompt_tokens = self.count_tokens(messages, tools)
        if not usage.completion_tokens:
            # NOTE: without reported usage (llama-cpp-python's server), each streamed piece counts as
            # one token, which holds for its one-token-per-chunk stream but is an estimate elsewhere.
            usage.completion_tokens = _int(timings.get("predicted_n")) or streamed.pieces

        first = streamed.first_piece_at or finished
        usage.prompt_seconds = _seconds(timings.get("prompt_ms")) or first - started
        usage.decode_seconds = _seconds(timings.get("predicted_ms")) or (streamed.last_piece_at or finished) - first
        return usage

    def _check_prompt_size(self, reported: int, messages, tools) -> None:
        """Warn when the server's prompt size and ours disagree, the sign of a silently cut prompt."""
        counted = self._count_with_server(messages, tools)
        margin = PROMPT_MISMATCH_WITH_TOKENIZER
        if counted is None:
            counted, margin = estimate_tokens(_flat_text(messages, tools)), PROMPT_MISMATCH_WITH_ESTIMATE
        if abs(reported - counted) <= max(PROMPT_MISMATCH_SLACK, margin * counted):
            return
        with self._lock:
            self._mismatch_warnings += 1
            repeats = self._mismatch_warnings
        log = logger.warning if repeats == 1 else logger.debug
        log(
            "The server counted %d prompt tokens where we count %d (mismatch %d so far). A server whose context "
            "is smaller than the prompt may cut it without an error; check the server's context size.",
            reported, counted, repeats,
        )

    def _count_with_server(self, messages, tools) -> int | None:
        payload = {"model": self.model_name, "messages": [to_openai_message(message) for message in messages]}
        if tools:
            payload["tools"] = [tool.to_openai() for tool in tools]
        return count_with_server(self.client, self.server, payload, _flat_text(messages, tools))


def to_openai_message(message: Message) -> dict[str, Any]:
    """Convert one message to the Chat Completions shape. The thought channel is never sent back."""
    data: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.role == "assistant" and message.tool_calls:
        data["tool_calls"] = [
            {
                "id": call.id or f"call_{index}",
                "type": "function",
                "function": {"name": call.name, "arguments": json.dumps(call.arguments, ensure_ascii=False)},
            }
            for index, call in enumerate(message.tool_calls, start=1)
        ]
    if message.role == "tool":
        data["tool_call_id"] = message.tool_call_id
        if message.name:
            data["name"] = message.name
    return data


def _decode_calls(partials: Sequence[PartialCall], truncated: bool) -> tuple[list[ToolCall], list[CallProblem]]:
    """Turn streamed calls into ToolCalls. A call whose arguments are not JSON becomes a problem instead."""
    calls, problems = [], []
    for partial in partials:
        raw = partial.arguments.strip() or "{}"
        try:
            arguments = json.loads(raw)
        except json.JSONDecodeError as error:
            message = TRUNCATED_CALL_MESSAGE if truncated else f"The arguments of {partial.name} are not valid JSON: {error.msg}."
            problems.append(CallProblem(message, raw))
            continue
        calls.append(ToolCall(partial.name, arguments, id=partial.id))
    return calls, problems


def _keep_server_ids(parsed_calls: list[ToolCall], structured: Sequence[ToolCall]) -> None:
    """Give accepted structured calls back the ids the server chose; the parser numbers calls afresh."""
    accepted = [call for call in structured if call.id]
    for parsed, original in zip(parsed_calls, accepted):
        if parsed.name == original.name and parsed.arguments == original.arguments:
            parsed.id = original.id


def _rejects_tool_choice(error: ServerError) -> bool:
    return error.status in (400, 422) and "tool_choice" in error.server_message.lower()


def _warn_ollama_context(server: ServerInfo, requested: int) -> None:
    # Ollama's /v1/chat/completions has no field for num_ctx (its request type in openai/openai.go
    # ignores `options`), so the context comes from the server: OLLAMA_CONTEXT_LENGTH or the model file.
    if server.loaded_context_size and server.loaded_context_size >= requested:
        return
    loaded = f"{server.loaded_context_size} tokens" if server.loaded_context_size else "the server's default (4096 tokens with under 24 GB of VRAM)"
    logger.warning(
        "Ollama serves %s with %s of context and cuts longer prompts silently. "
        "Restart it with OLLAMA_CONTEXT_LENGTH=%d ollama serve for a larger one.",
        server.model, loaded, requested,
    )


def _api_key(settings: Settings) -> str:
    if not settings.api_key_env:
        return ""
    key = os.environ.get(settings.api_key_env, "")
    if not key:
        raise UsageError(f"api_key_env names {settings.api_key_env}, but that environment variable is empty or unset.")
    return key


def _flat_text(messages: Sequence[Message], tools: Sequence[ToolSpec]) -> str:
    parts = [message.content for message in messages]
    parts += [json.dumps(call.arguments, ensure_ascii=False) for message in messages for call in message.tool_calls]
    parts += [json.dumps(tool.to_openai(), ensure_ascii=False) for tool in tools]
    return "\n".join(parts)


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _seconds(milliseconds: Any) -> float:
    try:
        return float(milliseconds) / 1000.0 if milliseconds else 0.0
    except (TypeError, ValueError):
        return 0.0
