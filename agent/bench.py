"""`gemma-agent bench`: measure the in-process engine against llama-cpp-python on one model, in one process.

Every number is a ratio or a rate measured side by side in the same run, so the machine cancels out.
It compares engine and direct decode speed, prompt tokens evaluated with prefix reuse and from
scratch over a scripted conversation, and constrained and free decode speed (with llama.cpp's own
GBNF grammar for comparison). It also times the CLI start-up and the first token.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from agent.chat.messages import Message, ToolCall, ToolSpec
from agent.config import Settings

DECODE_TOKENS = 128
CONVERSATION_TURNS = 10
TURN_REPLY_TOKENS = 32
REPEATS = 3
BENCH_PROMPT = "Write a long story about a lighthouse keeper who finds a message in a bottle."
SYSTEM_TEXT = "You are a coding agent. Use the tools to build what the user asks for, then call finish."
WRITE_FILE = ToolSpec(
    "write_file",
    "Write a text file in the workspace.",
    {
        "type": "object",
        "properties": {"path": {"type": "string"}, "content": {"type": "string"}},
        "required": ["path", "content"],
    },
)
# A call with one long free string: what llama.cpp's grammar sampler pays for on every token.
CALL_GRAMMAR = r'''
root ::= "{\"name\": \"write_file\", \"arguments\": {\"path\": \"" [a-z_./]{1,24} "\", \"content\": \"" char* "\"}}"
char ::= [^"\\] | "\\" ["\\nt]
'''
TOOL_OUTPUT = "Wrote story.txt (812 bytes). The tests ran: 3 passed, 0 failed in 0.41 s. " * 3


@dataclass
class BenchResult:
    """The measurements of one bench run, None where a measurement was not taken."""

    model: str
    settings: dict[str, Any]
    engine_decode_tps: float | None = None
    direct_decode_tps: float | None = None
    constrained_decode_tps: float | None = None
    constrained_share: float | None = None
    grammar_decode_tps: float | None = None
    conversation: dict[str, int] = field(default_factory=dict)
    fixed_prompt_tokens: int | None = None
    agent_step_ms: dict[str, float] = field(default_factory=dict)
    help_seconds: float | None = None
    load_seconds: float | None = None
    first_token_seconds: float | None = None
    notes: list[str] = field(default_factory=list)

    def ratios(self) -> dict[str, float | None]:
        conversation = self.conversation
        return {
            "engine_vs_direct": _ratio(self.engine_decode_tps, self.direct_decode_tps),
            "constrained_vs_free": _ratio(self.constrained_decode_tps, self.engine_decode_tps),
            "grammar_vs_free": _ratio(self.grammar_decode_tps, self.direct_decode_tps),
            "evaluated_vs_final_context": _ratio(conversation.get("evaluated"), conversation.get("final_context")),
            "evaluated_vs_from_scratch": _ratio(conversation.get("evaluated"), conversation.get("from_scratch")),
        }

    def to_dict(self) -> dict[str, Any]:
        data = {key: value for key, value in self.__dict__.items()}
        data["ratios"] = self.ratios()
        return data


def run_bench(
    settings: Settings,
    *,
    decode_tokens: int = DECODE_TOKENS,
    turns: int = CONVERSATION_TURNS,
    messages: Sequence[Message] | None = None,
    tools: Sequence[ToolSpec] | None = None,
    agent_step: Callable[[], dict[str, float]] | None = None,
) -> BenchResult:
    """Run every measurement on `settings.model`.

    `messages` and `tools` give the fixed prompt (system text and tool declarations) to size.
    `agent_step` runs agent steps against a scripted engine and returns their milliseconds outside the
    engine (median and p95), as `agent.bench_steps.measure_agent_steps` does.
    """
    from agent.engines.llamacpp import LlamaCppEngine

    result = BenchResult(model=settings.model, settings={"ctx": settings.ctx, "threads": settings.threads})
    result.help_seconds = _time_help()

    started = time.perf_counter()
    engine = LlamaCppEngine(settings)
    result.load_seconds = time.perf_counter() - started
    try:
        result.first_token_seconds = result.load_seconds + _first_token_seconds(engine)
        fixed = list(messages or [Message("system", SYSTEM_TEXT)])
        result.fixed_prompt_tokens = engine.count_tokens([m for m in fixed if m.role == "system"], list(tools or [WRITE_FILE]))
        result.engine_decode_tps = _engine_decode(engine, decode_tokens, [], "none")
        _measure_constrained(engine, decode_tokens, result)
        result.conversation = _conversation(engine, turns)
    finally:
        engine.close()

    _measure_direct(settings, decode_tokens, result)
    if agent_step is not None:
        result.agent_step_ms = agent_step()
    else:
        result.notes.append("agent step time not measured: pass agent_step to run_bench")
    return result


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if not numerator or not denominator:
        return None
    return numerator / denominator


def _time_help() -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "agent", "--help"], capture_output=True, check=False)
    return time.perf_counter() - started


def _first_token_seconds(engine) -> float:
    settings = engine.settings
    saved = settings.max_reply_tokens
    settings.max_reply_tokens = 1
    started = time.perf_counter()
    try:
        engine.reply([Message("user", BENCH_PROMPT)], [], tool_choice="none")
    finally:
        settings.max_reply_tokens = saved
    engine.cache.reset()
    return engine.last_generation.first_token_at - started


def _decode_rate(tokens: int, first: float, last: float) -> float | None:
    """Tokens per second between the first and the last sampled token: decode steps only, no prompt."""
    return (tokens - 1) / (last - first) if tokens > 1 and last > first else None


def _engine_decode(engine, tokens: int, tools: list[ToolSpec], tool_choice: str) -> float | None:
    settings = engine.settings
    saved = settings.max_reply_tokens
    settings.max_reply_tokens = tokens
    rates = []
    try:
        for _ in range(REPEATS):
            engine.cache.reset()
            engine.reply([Message("user", BENCH_PROMPT)], tools, tool_choice=tool_choice)
            generation = engine.last_generation
            rates.append(_decode_rate(generation.completion_tokens, generation.first_token_at, generation.last_token_at))
    finally:
        settings.max_reply_tokens = saved
    valid = [rate for rate in rates if rate]
    return statistics.median(valid) if valid else None


def _measure_constrained(engine, tokens: int, result: BenchResult) -> None:
    try:
        engine.format.call_constraint([WRITE_FILE])
    except ImportError as error:
        result.notes.append(f"constrained decode not measured: {error}")
        return
    result.constrained_decode_tps = _engine_decode(engine, tokens, [WRITE_FILE], "required")
    generation = engine.last_generation
    result.constrained_share = generation.constrained_tokens / max(1, generation.completion_tokens)


def _conversation(engine, turns: int) -> dict[str, int]:
    """Play a scripted tool-using conversation; count prompt tokens evaluated with reuse and from scratch."""
    settings = engine.settings
    saved = settings.max_reply_tokens
    settings.max_reply_tokens = TURN_REPLY_TOKENS
    engine.cache.reset()
    messages = [Message("system", SYSTEM_TEXT), Message("user", BENCH_PROMPT)]
    evaluated = from_scratch = final_context = 0
    try:
        for turn in range(turns):
            reply = engine.reply(messages, [WRITE_FILE], tool_choice="none")
            evaluated += reply.usage.prompt_tokens_evaluated
            from_scratch += reply.usage.prompt_tokens
            final_context = reply.usage.prompt_tokens + reply.usage.completion_tokens
            call = ToolCall("write_file", {"path": f"part{turn}.txt", "content": reply.content[:200]}, id=f"call_{turn}")
            messages.append(Message("assistant", reply.content, tool_calls=[call]))
            messages.append(Message("tool", TOOL_OUTPUT, name="write_file", tool_call_id=call.id))
    finally:
        settings.max_reply_tokens = saved
    return {"turns": turns, "evaluated": evaluated, "from_scratch": from_scratch, "final_context": final_context}


def _measure_direct(settings: Settings, tokens: int, result: BenchResult) -> None:
    """Decode with llama-cpp-python's own `Llama.generate`, free and with a GBNF grammar."""
    from llama_cpp import Llama, LlamaGrammar

    from agent.engines.llamacpp import LlamaCppEngine
    from agent.engines.llamacpp_native import KV_TYPES, default_threads

    helper = LlamaCppEngine(replace(settings, ctx=512))
    prompt = helper.tokenize_prompt([Message("user", BENCH_PROMPT)], [])
    helper.close()
    llm = Llama(
        settings.model,
        n_ctx=settings.ctx,
        n_batch=settings.batch_size,
        n_ubatch=settings.batch_size,
        n_threads=settings.threads or default_threads(),
        n_threads_batch=settings.threads or default_threads(),
        n_gpu_layers=settings.gpu_layers,
        flash_attn=settings.flash_attn,
        swa_full=settings.swa_full,
        type_k=KV_TYPES[settings.kv_type],
        type_v=KV_TYPES[settings.kv_type],
        verbose=False,
    )
    try:
        result.direct_decode_tps = _direct_decode(llm, prompt, tokens, settings, None)
        grammar = LlamaGrammar.from_string(CALL_GRAMMAR, verbose=False)
        result.grammar_decode_tps = _direct_decode(llm, prompt, tokens, settings, grammar)
    finally:
        llm.close()


def _direct_decode(llm, prompt: list[int], tokens: int, settings: Settings, grammar) -> float | None:
    rates = []
    for _ in range(REPEATS):
        llm.reset()
        stamps = []
        for token in llm.generate(
            prompt,
            top_k=settings.top_k,
            top_p=settings.top_p,
            min_p=0.0,
            temp=settings.temperature,
            repeat_penalty=settings.repeat_penalty,
            grammar=grammar,
        ):
            stamps.append(time.perf_counter())
            if len(stamps) >= tokens or llm.token_eos() == token:
                break
        rates.append(_decode_rate(len(stamps), stamps[0], stamps[-1]) if stamps else None)
    valid = [rate for rate in rates if rate]
    return statistics.median(valid) if valid else None


def print_table(result: BenchResult, console=None) -> None:
    """Show the measurements and their ratios as a rich table."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    table = Table(title=f"gemma-agent bench: {Path(result.model).name}")
    table.add_column("measurement")
    table.add_column("value", justify="right")
    for label, value in _rows(result):
        table.add_row(label, value)
    console.print(table)
    for note in result.notes:
        console.print(f"note: {note}")


def _rows(result: BenchResult) -> list[tuple[str, str]]:
    ratios = result.ratios()
    conversation = result.conversation
    return [
        ("decode tok/s, engine", _number(result.engine_decode_tps)),
        ("decode tok/s, llama-cpp-python direct", _number(result.direct_decode_tps)),
        ("engine / direct (target >= 0.97)", _number(ratios["engine_vs_direct"], 3)),
        ("decode tok/s, engine inside a call", _number(result.constrained_decode_tps)),
        ("  share of tokens constrained", _number(result.constrained_share, 2)),
        ("constrained / free (target >= 0.85)", _number(ratios["constrained_vs_free"], 3)),
        ("decode tok/s, direct with GBNF grammar", _number(result.grammar_decode_tps)),
        ("grammar / free", _number(ratios["grammar_vs_free"], 3)),
        (f"prompt tokens evaluated over {conversation.get('turns', 0)} turns", str(conversation.get("evaluated", "-"))),
        ("  from scratch each turn", str(conversation.get("from_scratch", "-"))),
        ("  final context", str(conversation.get("final_context", "-"))),
        ("evaluated / final context (target ~1.0)", _number(ratios["evaluated_vs_final_context"], 3)),
        ("fixed prompt tokens (system + tools)", str(result.fixed_prompt_tokens or "-")),
        ("agent ms per step outside the engine, median (target < 20)", _number(result.agent_step_ms.get("median_ms"), 1)),
        ("agent ms per step outside the engine, p95", _number(result.agent_step_ms.get("p95_ms"), 1)),
        ("gemma-agent --help seconds", _number(result.help_seconds, 2)),
        ("model load seconds", _number(result.load_seconds, 2)),
        ("first token seconds (load + prompt + 1 token)", _number(result.first_token_seconds, 2)),
    ]


def _number(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def write_json(result: BenchResult, path: Path) -> None:
    path.write_text(json.dumps(result.to_dict(), indent=2, default=str) + "\n", encoding="utf-8")
