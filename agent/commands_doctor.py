"""`gemma-agent doctor`: report what this machine has for a build, one line per check."""

from __future__ import annotations

import json
from typing import Annotated

import typer


def doctor(
    json_out: Annotated[bool, typer.Option("--json", help="Print the checks as a JSON list instead of lines.")] = False,
) -> None:
    """Check Python, llama-cpp-python and its backend, CPU, GPU, sandbox, git, browser and the model.

    Exit code 0 when everything a build needs is OK, 1 otherwise; each failed line ends with the fix.
    """
    from agent.config import load_settings
    from agent.doctor import all_required_ok, run_checks
    from agent.errors import AgentError

    try:
        settings = load_settings()
    except AgentError as error:
        typer.echo(f"Error: {error}", err=True)
        raise typer.Exit(error.exit_code) from None
    checks = run_checks(settings)
    if json_out:
        typer.echo(json.dumps([check.to_dict() for check in checks], indent=2))
    else:
        for check in checks:
            typer.echo(_line(check))
    raise typer.Exit(0 if all_required_ok(checks) else 1)


def _line(check) -> str:
    if check.ok:
        return f"OK    {check.name}: {check.detail}"
    mark = "FAIL " if check.required else "WARN "
    return f"{mark} {check.name}: {check.detail}. {check.fix}".rstrip()
