"""`gemma-agent models ...`: list the GGUF files found, download a Gemma 4 model, recommend what fits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from agent.cli_errors import handle_errors

models_app = typer.Typer(
    help="Find, download and size models. Downloads go to the Hugging Face cache (HF_HOME, HF_HUB_CACHE).",
    no_args_is_help=True,
)

JsonOut = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


@models_app.command("list")
@handle_errors
def list_models(
    model_dir: Annotated[
        Optional[list[Path]], typer.Option("--model-dir", help="Also search this folder (repeatable), before `model_dirs` and the Hugging Face cache.")
    ] = None,
    json_out: JsonOut = False,
) -> None:
    """List the GGUF files found, with architecture, size, quantization, context length and chat template."""
    from agent.config import load_settings
    from agent.models import find_model_files, search_dirs

    settings = load_settings()
    files = find_model_files(settings.model_dirs, model_dir or [])
    if json_out:
        typer.echo(json.dumps([found.to_dict() for found in files], indent=2))
        return
    if not files:
        searched = ", ".join(str(folder) for folder, _ in search_dirs(settings.model_dirs, model_dir or []))
        typer.echo(f"No GGUF files found in: {searched}.")
        typer.echo("Get the default model with `gemma-agent models pull gemma-4-26b-a4b`, or add a folder with --model-dir.")
        return
    _print_files(files)


def _print_files(files) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table("file", "architecture", "size", "quantization", "context", "chat template", "found in")
    for found in files:
        if found.error:
            table.add_row(str(found.path), f"[red]{found.error}[/red]", _size(found.size_bytes), "", "", "", found.source)
            continue
        template = "yes" if found.chat_template else "no (built-in format)"
        table.add_row(
            str(found.path), found.architecture, _size(found.size_bytes), found.quantization,
            str(found.context_length), template, found.source,
        )
    Console(width=200).print(table)


def _size(size_bytes: int) -> str:
    return f"{size_bytes / 1024**3:.2f} GiB" if size_bytes >= 1024**3 else f"{size_bytes / 1024**2:.1f} MiB"


@models_app.command("pull")
@handle_errors
def pull(
    name: Annotated[str, typer.Argument(help="Catalog name: gemma-4-26b-a4b (default model), gemma-4-31b, gemma-4-e4b or gemma-4-e2b.")],
    quant: Annotated[str, typer.Option("--quant", help="Quantization to download, as in the file name: Q4_K_M (default) or Q8_0.")] = "Q4_K_M",
    repo: Annotated[Optional[str], typer.Option("--repo", help="Download from this Hugging Face repository instead of the catalog's.")] = None,
) -> None:
    """Download a Gemma 4 GGUF file into the Hugging Face cache, resuming a partial download, and verify its sha256.

    Exit code 2 for an unknown name or quantization, 3 when the hub cannot be reached or the checksum differs.
    """
    from agent.models import pull_model

    path = pull_model(name, quant, repo)
    typer.echo(f"Downloaded and verified: {path}")
    typer.echo(f"Use it with --model {name}, or with no --model when it is the default model.")


@models_app.command("recommend")
@handle_errors
def recommend_command(
    ctx: Annotated[Optional[int], typer.Option(help="Context size in tokens to size the KV cache for. Default: the `ctx` setting (32768).")] = None,
    kv_type: Annotated[Optional[str], typer.Option(help="KV cache type to size for: f16, q8_0 or q4_0. Default: the `kv_type` setting.")] = None,
    json_out: JsonOut = False,
) -> None:
    """Say which Gemma 4 model and quantization fit this machine's RAM and GPU memory, with --gpu-layers and --cpu-moe."""
    from agent.config import load_settings
    from agent.hardware import detect_hardware
    from agent.recommend import recommend

    # As flags, the two values are checked by the same rules as in every other command.
    settings = load_settings({"ctx": ctx, "kv_type": kv_type})
    hardware = detect_hardware()
    plan = recommend(hardware, settings.ctx, settings.kv_type)
    if json_out:
        typer.echo(json.dumps({"hardware": hardware.to_dict(), "plan": plan.to_dict()}, indent=2))
        return
    typer.echo(render_plan(plan, hardware))


def render_plan(plan, hardware) -> str:
    """Return the recommendation as text: the hardware, the arithmetic, the commands to run."""
    gpus = ", ".join(f"{gpu.name} {gpu.memory_bytes / 1024**3:.1f} GiB" for gpu in hardware.gpus) or "none"
    lines = [f"RAM {hardware.ram_bytes / 1024**3:.1f} GiB; GPU: {gpus}", ""]
    lines += [f"  {step}" for step in plan.steps]
    lines.append("")
    if not plan.fits:
        lines.append(f"Not even {plan.model} {plan.quant} fits here; try a smaller --ctx or --kv-type q8_0.")
        return "\n".join(lines)
    lines.append(f"Recommended: {plan.model} {plan.quant}, {plan.placement}.")
    lines.append(f"  gemma-agent models pull {plan.model} --quant {plan.quant}")
    lines.append(f'  gemma-agent build "TASK" {plan.flags()}')
    return "\n".join(lines)
