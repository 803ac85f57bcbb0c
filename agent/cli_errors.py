"""The one-line `Error:` handling shared by every `gemma-agent` command."""

from __future__ import annotations

import functools

import typer

from agent.errors import EXIT_INTERRUPTED, AgentError


def handle_errors(command):
    """Turn our failures into one `Error:` line on stderr and the documented exit code."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except AgentError as error:
            typer.echo(f"Error: {error}", err=True)
            raise typer.Exit(error.exit_code) from None
        except KeyboardInterrupt:
            typer.echo("Interrupted.", err=True)
            raise typer.Exit(EXIT_INTERRUPTED) from None

    return wrapper
