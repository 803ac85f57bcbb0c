"""The README's command reference and `--help` stay in step: every option documented, every documented option real."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer.main

from agent.cli import app

README = Path(__file__).resolve().parent.parent / "README.md"
OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")


def commands() -> dict[str, object]:
    """Return every leaf command of the CLI by its full name, such as `gemma-agent models pull`."""
    found = {}
    pending = [("gemma-agent", typer.main.get_command(app))]
    while pending:
        name, command = pending.pop()
        subcommands = getattr(command, "commands", None)
        if subcommands:
            pending += [(f"{name} {sub_name}", sub) for sub_name, sub in subcommands.items()]
        else:
            found[name] = command
    return found


def options_of(command) -> set[str]:
    names = set()
    for param in command.params:
        if param.param_type_name == "option" and param.name != "help":
            names.update(name for name in param.opts + param.secondary_opts if name.startswith("--"))
    return names


def readme_text() -> str:
    return README.read_text(encoding="utf-8")


def reference_lines(text: str) -> list[str]:
    """Lines that talk about our CLI: any line naming `gemma-agent`, and every table row."""
    return [line for line in text.splitlines() if "gemma-agent" in line or line.lstrip().startswith("|")]


@pytest.mark.parametrize("name", sorted(commands()))
def test_command_and_options_in_readme(name):
    text = readme_text()
    assert f"`{name}" in text, f"{name} has no section in README.md"
    missing = sorted(option for option in options_of(commands()[name]) if not re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", text))
    assert not missing, f"{name}: options missing from README.md: {missing}"


def test_every_option_in_readme_exists():
    known = set().union(*(options_of(command) for command in commands().values())) | {"--help"}
    mentioned = {option for line in reference_lines(readme_text()) for option in OPTION.findall(line)}
    unknown = sorted(mentioned - known)
    assert not unknown, f"README.md mentions options no command has: {unknown}"


def test_every_option_has_help():
    for name, command in commands().items():
        assert (command.help or "").strip(), f"{name} has no help text"
        for param in command.params:
            if param.param_type_name == "option" and param.name != "help":
                assert (param.help or "").strip(), f"{name} {param.opts[0]} has no help text"
