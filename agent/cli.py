"""The `gemma-agent` command line: a thin typer app; every command calls a library function."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from agent.cli_errors import handle_errors
from agent.errors import EXIT_INTERRUPTED, AgentError

EXIT_CODES_HELP = (
    "Exit codes: 0 the task finished (and its checks passed); 1 the agent stopped without finishing "
    "(step, time or context limit, stuck, checks failing); 2 bad usage or configuration (including a "
    "missing model file); 3 the engine failed (load error, server down); 130 interrupted."
)

app = typer.Typer(
    name="gemma-agent",
    help="A coding agent that runs a local model through llama.cpp.",
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Show the effective configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")


def setup_logging(verbose: bool) -> None:
    """Send our loggers to stderr: warnings always, everything with -v."""
    from rich.logging import RichHandler

    handler = RichHandler(console=_stderr_console(), show_path=False, show_time=False)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("agent").setLevel(logging.DEBUG if verbose else logging.WARNING)
    logging.getLogger("tools").setLevel(logging.DEBUG if verbose else logging.WARNING)


@functools.lru_cache(maxsize=1)
def _stderr_console():
    from rich.console import Console

    return Console(stderr=True, highlight=False)


# Options shared by every command that runs a model.
Model = Annotated[
    Optional[str],
    typer.Option(
        "--model", "-m",
        help="GGUF model for the llamacpp engine: a path, a catalog name such as gemma-4-26b-a4b, or a file name "
        "found by `gemma-agent models list`. Default: the `model` setting, else the downloaded Gemma 4 26B-A4B.",
    ),
]
Engine = Annotated[Optional[str], typer.Option(help="llamacpp (in-process, default), openai (an OpenAI-compatible server) or scripted.")]
Script = Annotated[Optional[str], typer.Option(help="JSON Lines file of replies for --engine scripted (or a trajectory to replay).")]
BaseUrl = Annotated[Optional[str], typer.Option(help="Server URL for --engine openai, e.g. http://127.0.0.1:8080/v1.")]
ApiModel = Annotated[Optional[str], typer.Option(help="Model name sent to the server (--engine openai).")]
ApiKeyEnv = Annotated[Optional[str], typer.Option(help="Environment variable holding the server's API key (--engine openai).")]
Ctx = Annotated[Optional[int], typer.Option(help="Context size in tokens. Default 32768.")]
GpuLayers = Annotated[Optional[int], typer.Option(help="Layers to offload to the GPU; -1 for all (default), 0 for none.")]
Threads = Annotated[Optional[int], typer.Option(help="CPU threads for llama.cpp; 0 picks one per physical core.")]
CpuMoe = Annotated[Optional[int], typer.Option(help="Keep the MoE expert weights of this many layers in system RAM.")]
KvType = Annotated[Optional[str], typer.Option(help="KV cache type: f16 (default), q8_0 or q4_0.")]
Thinking = Annotated[Optional[bool], typer.Option("--thinking/--no-thinking", help="Let Gemma 4 think before it replies.")]
Temperature = Annotated[Optional[float], typer.Option(help="Sampling temperature. Default 0.2.")]
Seed = Annotated[Optional[int], typer.Option(help="Sampling seed, for repeatable runs.")]
JsonOut = Annotated[bool, typer.Option("--json", help="Print JSON Lines events instead of the screen; the last one is the summary.")]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Log engine and loop details to stderr.")]


def collect_flags(**flags: Any) -> dict[str, Any]:
    """Return the flags the user gave, by setting name (None means not given)."""
    return {key: value for key, value in flags.items() if value is not None}


@app.command()
@handle_errors
def build(
    task: Annotated[str, typer.Argument(help="What to build, in plain words. Leave out with --resume.")] = "",
    resume: Annotated[Optional[str], typer.Option(help="Continue the stopped run RUN (its id, shown in the summary) of the workspace.", metavar="RUN")] = None,
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
    max_steps: Annotated[Optional[int], typer.Option(help="Stop after this many model replies. Default 30.")] = None,
    max_seconds: Annotated[Optional[float], typer.Option(help="Stop after this many seconds. Default 3600.")] = None,
    sandbox: Annotated[Optional[str], typer.Option(help="auto (bubblewrap where it works), bwrap, or none (no isolation).")] = None,
    allow_network: Annotated[Optional[bool], typer.Option("--allow-network", help="Let commands reach the network for this run.")] = None,
    branch: Annotated[Optional[bool], typer.Option("--branch", help="Work on a new branch gemma-agent/<run-id>.")] = None,
    checkpoints: Annotated[Optional[bool], typer.Option("--checkpoints/--no-checkpoints", help="Commit each step in git. Default on.")] = None,
    json_out: JsonOut = False,
    verbose: Verbose = False,
) -> None:
    """Build TASK in the workspace: plan, then write, edit and run files with tool calls until done."""
    from agent.config import load_settings
    from agent.session import run_task

    setup_logging(verbose)
    flags = collect_flags(
        model=model, engine=engine, script=script, base_url=base_url, api_model=api_model, api_key_env=api_key_env,
        ctx=ctx, gpu_layers=gpu_layers, threads=threads, cpu_moe=cpu_moe, kv_type=kv_type, thinking=thinking,
        temperature=temperature, seed=seed, max_steps=max_steps, max_seconds=max_seconds, sandbox=sandbox,
        allow_network=allow_network, branch=branch, checkpoints=checkpoints,
    )
    with _errors_as_json(json_out):
        settings = load_settings(flags)
        if resume and task.strip():
            from agent.errors import UsageError

            raise UsageError("Give either a task or --resume RUN, not both: a resumed run keeps its own task.")
        summary = run_task(task, settings, workspace, [_event_output(json_out)], resume=resume)
    raise typer.Exit(summary.exit_code)


@contextlib.contextmanager
def _errors_as_json(json_out: bool):
    """With --json, also report a failure that stops the run as a last JSON event on stdout."""
    try:
        yield
    except AgentError as error:
        if json_out:
            event = {"event": "error", "message": str(error), "exit_code": error.exit_code}
            sys.stdout.write(json.dumps(event) + "\n")
        raise


def _event_output(json_out: bool):
    from agent.ui import JsonLinesWriter, ScreenRenderer

    mask = _mask_function()
    if json_out:
        return JsonLinesWriter(sys.stdout, mask=mask)
    return ScreenRenderer(mask=mask)


def _mask_function():
    from agent.sandbox import mask_secrets

    return mask_secrets


@config_app.command("show")
@handle_errors
def config_show(
    json_out: Annotated[bool, typer.Option("--json", help="Print a JSON object of setting: {value, source}.")] = False,
) -> None:
    """Print every setting, its value and where it came from (default, a config file, environment)."""
    import json

    from rich.console import Console
    from rich.table import Table

    from agent.config import load_settings

    rows = load_settings().explain()
    if json_out:
        typer.echo(json.dumps({key: {"value": value, "source": source} for key, value, source in rows}, indent=2))
        return
    table = Table("setting", "value", "source")
    for key, value, source in rows:
        table.add_row(key, repr(value), source)
    Console().print(table)


HistoryWorkspace = Annotated[Path, typer.Option("--workspace", "-w", help="Folder the agent worked in.")]


@app.command("log")
@handle_errors
def log_command(workspace: HistoryWorkspace = Path("."), json_out: Annotated[bool, typer.Option("--json", help="Print the runs as a JSON array.")] = False) -> None:
    """List the agent's runs, newest first: task, status, and each checkpointed step with its commit, files and seconds."""
    from agent.history import load_runs, log_json, log_text

    runs = load_runs(workspace)
    typer.echo(log_json(runs) if json_out else log_text(runs))


@app.command("diff")
@handle_errors
def diff_command(
    target: Annotated[Optional[str], typer.Argument(metavar="[RUN|STEP]", help="A run id or unique prefix; RUN:N or N (step N of the latest run). Default: the latest run.")] = None,
    workspace: HistoryWorkspace = Path("."),
) -> None:
    """Show what a run or one step changed, as a patch."""
    from agent.history import diff_text

    typer.echo(diff_text(workspace, target))


@app.command("undo")
@handle_errors
def undo_command(
    steps: Annotated[Optional[int], typer.Option("--steps", help="Undo this many of the agent's latest steps. Default 1.")] = None,
    run: Annotated[Optional[str], typer.Option("--run", help="Undo every step of this run (id or unique prefix).")] = None,
    workspace: HistoryWorkspace = Path("."),
) -> None:
    """Undo the agent's latest steps or a whole run, touching only the agent's commits.

    Moves the branch back when nothing else happened since; otherwise adds revert commits. Changes nothing, and explains why, when you committed or edited the same files afterwards.
    """
    from agent.history import undo

    typer.echo("\n".join(undo(workspace, steps=steps, run=run).describe()))


# Commands kept in their own modules. They are imported here, after the shared options they reuse.
from agent.commands_chat import chat  # noqa: E402
from agent.commands_doctor import doctor  # noqa: E402
from agent.commands_eval import eval_command  # noqa: E402
from agent.commands_models import models_app  # noqa: E402

app.add_typer(models_app, name="models")
app.command()(doctor)
app.command()(chat)
from agent.commands_bench import bench  # noqa: E402

app.command()(bench)
app.command("eval")(eval_command)


def main() -> None:
    """Entry point of the console script."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)


if __name__ == "__main__":
    main()

