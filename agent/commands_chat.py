"""`gemma-agent chat`: the interactive session, with the engine options of `build`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from agent.cli import (
    ApiKeyEnv, ApiModel, BaseUrl, CpuMoe, Ctx, Engine, GpuLayers, KvType, Model, Script, Seed, Temperature,
    Thinking, Threads, Verbose, collect_flags, handle_errors, setup_logging,
)


@handle_errors
def chat(
    workspace: Annotated[Path, typer.Option("--workspace", "-w", help="Folder the agent works in; created if missing.")] = Path("."),
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
    max_steps: Annotated[Optional[int], typer.Option(help="Most model replies per message before the turn stops. Default 30.")] = None,
    sandbox: Annotated[Optional[str], typer.Option(help="auto (bubblewrap where it works), bwrap, or none (no isolation).")] = None,
    allow_network: Annotated[Optional[bool], typer.Option("--allow-network", help="Let commands reach the network in this session.")] = None,
    checkpoints: Annotated[Optional[bool], typer.Option("--checkpoints/--no-checkpoints", help="Commit each step in git, so /undo works. Default on.")] = None,
    verbose: Verbose = False,
) -> None:
    """Talk with the agent in the workspace: each message may lead to tool calls; /help lists the commands."""
    from agent.chat_session import ChatSession
    from agent.config import load_settings
    from agent.session import create_engine
    from agent.ui import ScreenRenderer

    setup_logging(verbose)
    flags = collect_flags(
        model=model, engine=engine, script=script, base_url=base_url, api_model=api_model, api_key_env=api_key_env,
        ctx=ctx, gpu_layers=gpu_layers, threads=threads, cpu_moe=cpu_moe, kv_type=kv_type, thinking=thinking,
        temperature=temperature, seed=seed, max_steps=max_steps, sandbox=sandbox, allow_network=allow_network,
        checkpoints=checkpoints,
    )
    settings = load_settings(flags)
    chat_engine = create_engine(settings)
    try:
        renderer = ScreenRenderer(mask=_mask())
        session = ChatSession(settings, workspace, chat_engine, console=renderer.console, handlers=[renderer])
        raise typer.Exit(session.run())
    finally:
        chat_engine.close()


def _mask():
    from agent.session import _secret_masker

    return _secret_masker()
