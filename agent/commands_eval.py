"""`gemma-agent eval`: run task suites, check the results, and report pass rates with inference figures."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from agent.cli import (
    ApiKeyEnv, ApiModel, BaseUrl, CpuMoe, Ctx, Engine, GpuLayers, KvType, Model, Script, Seed, Temperature,
    Thinking, Threads, Verbose, collect_flags, handle_errors, setup_logging,
)


REPORT_WIDTH = 160


@handle_errors
def eval_command(
    paths: Annotated[list[Path], typer.Argument(metavar="PATH...", help="Task files (task.toml) or folders holding them.")],
    model: Model = None,
    engine: Engine = None,
    script: Script = None,
    base_url: BaseUrl = None,
    api_model: ApiModel = None,
    api_key_env: ApiKeyEnv = None,
    ctx: Ctx = None,
    gpu_layers: GpuLayers = None,
    threads: Threads = None,
    cpu_moe: CpuMoe = None,
    kv_type: KvType = None,
    thinking: Thinking = None,
    temperature: Temperature = None,
    seed: Seed = None,
    repeat: Annotated[int, typer.Option(min=1, help="Run each task this many times; the report adds pass@k.")] = 1,
    jobs: Annotated[int, typer.Option(min=1, help="Runs at once; more than 1 only with an engine that serves concurrent requests (a server).")] = 1,
    report: Annotated[Optional[Path], typer.Option(help="Also write the report as JSON to this file.")] = None,
    sandbox: Annotated[Optional[str], typer.Option(help="auto (bubblewrap where it works), bwrap, or none (no isolation).")] = None,
    show_runs: Annotated[bool, typer.Option("--show-runs", help="Draw each run's calls on screen as build does.")] = False,
    verbose: Verbose = False,
) -> None:
    """Run each task in a fresh workspace, then its checks; report pass/fail, steps, tokens and speed.

    With --engine scripted and no --script, each task replays its own recorded replies (its `replay` file).
    Exit code 0 only when every run of every task passed.
    """
    from rich.console import Console

    from agent.config import load_settings
    from agent.evals.report import render_report, write_json
    from agent.evals.runner import evaluate
    from agent.ui import ScreenRenderer

    setup_logging(verbose)
    flags = collect_flags(
        model=model, engine=engine, script=script, base_url=base_url, api_model=api_model, api_key_env=api_key_env,
        ctx=ctx, gpu_layers=gpu_layers, threads=threads, cpu_moe=cpu_moe, kv_type=kv_type, thinking=thinking,
        temperature=temperature, seed=seed, sandbox=sandbox,
    )
    settings = load_settings(flags)
    # Piped output has no terminal width to follow; the report table needs more than rich's 80 columns.
    console = Console(highlight=False, width=None if sys.stdout.isatty() else REPORT_WIDTH)
    handlers = [ScreenRenderer(console)] if show_runs else []
    result = evaluate(paths, settings, repeat=repeat, jobs=jobs, handlers=handlers, on_attempt=_progress(console))
    render_report(result, console)
    if report is not None:
        write_json(result, report)
        console.print(f"report written to {report}")
    raise typer.Exit(result.exit_code)


def _progress(console):
    def show(attempt) -> None:
        mark = "[green]pass[/green]" if attempt.passed else "[red]fail[/red]"
        console.print(f"{attempt.task} run {attempt.attempt}: {mark}")

    return show
