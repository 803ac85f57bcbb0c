"""`gemma-agent bench`: measure the in-process engine on a model and print the ratios."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from agent.cli import Ctx, GpuLayers, KvType, Model, Threads, Verbose, collect_flags, handle_errors, setup_logging


@handle_errors
def bench(
    model: Model = None,
    ctx: Ctx = None,
    gpu_layers: GpuLayers = None,
    threads: Threads = None,
    kv_type: KvType = None,
    tokens: Annotated[int, typer.Option(help="Tokens decoded per speed measurement.")] = 128,
    turns: Annotated[int, typer.Option(help="Turns of the scripted conversation.")] = 10,
    json_file: Annotated[Optional[Path], typer.Option("--json-file", help="Also write the results to this JSON file.")] = None,
    verbose: Verbose = False,
) -> None:
    """Measure decode speed (engine vs llama-cpp-python, constrained vs free), prefix reuse and start-up time."""
    from agent.bench import print_table, run_bench, write_json
    from agent.bench_steps import measure_agent_steps
    from agent.chat.messages import Message
    from agent.config import load_settings
    from agent.models import resolve_model
    from agent.prompts import render_prompt
    from tools import default_toolset

    setup_logging(verbose)
    settings = load_settings(collect_flags(model=model, ctx=ctx, gpu_layers=gpu_layers, threads=threads, kv_type=kv_type))
    settings.model = str(resolve_model(settings.model, settings.model_dirs))
    fixed_prompt = [Message("system", render_prompt("system"))]
    result = run_bench(
        settings, decode_tokens=tokens, turns=turns, messages=fixed_prompt, tools=default_toolset().specs(), agent_step=measure_agent_steps
    )
    print_table(result)
    if json_file is not None:
        write_json(result, json_file)
