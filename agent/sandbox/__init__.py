"""Runs the commands the model chooses: bubblewrap isolation, resource limits, a clean environment, masked output.

`create_sandbox(settings, root)` picks the backend from `settings.sandbox`: "auto" and "bwrap" use
bubblewrap and raise UsageError where it cannot run; "none" runs commands without isolation.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from agent.errors import UsageError
from agent.sandbox.bwrap import BwrapSandbox, probe
from agent.sandbox.limits import CommandLimits
from agent.sandbox.runner import BackgroundProcess, CommandResult, Sandbox
from agent.sandbox.secrets import mask_secrets

if TYPE_CHECKING:
    from agent.config import Settings

PlainSandbox = Sandbox
BACKENDS = ("auto", "bwrap", "none")

__all__ = [
    "BackgroundProcess",
    "BwrapSandbox",
    "CommandLimits",
    "CommandResult",
    "PlainSandbox",
    "Sandbox",
    "create_sandbox",
    "describe_backend",
    "mask_secrets",
    "startup_notice",
]


def create_sandbox(settings: Settings, root: Path) -> Sandbox:
    """Return the sandbox `settings.sandbox` selects for the workspace `root`.

    Raises UsageError for an unknown backend, or when bubblewrap is requested (or "auto") but cannot run.
    """
    backend = _checked_backend(settings)
    limits = CommandLimits.from_settings(settings)
    if backend == "none":
        return Sandbox(root, limits=limits, allow_network=True)
    works, reason = probe()
    if not works:
        raise UsageError(
            f"Cannot sandbox commands: {reason}. Fix that, or set sandbox = \"none\" (flag --sandbox none) "
            "to run commands without isolation."
        )
    return BwrapSandbox(root, limits=limits, allow_network=settings.allow_network)


def describe_backend(settings: Settings) -> tuple[str, str]:
    """Return (backend name, reason) for `gemma-agent doctor`: what would run commands, and why."""
    backend = _checked_backend(settings)
    if backend == "none":
        return "none", "sandbox = none: commands run without isolation, with the limits and clean environment only"
    works, reason = probe()
    if not works:
        return "unavailable", reason
    network = "network on (allow_network)" if settings.allow_network else "no network"
    return "bwrap", f"{reason}: workspace read-write (its .git read-only), system read-only, private /tmp, {network}"


def startup_notice(settings: Settings) -> str:
    """Return the line to show at the start of every run when commands are less isolated than usual, or ""."""
    if _checked_backend(settings) == "none":
        return "Warning: sandbox = none, so commands run without isolation and can change any file you can."
    if settings.allow_network:
        return "Network access is on for commands (allow_network)."
    return ""


def _checked_backend(settings: Settings) -> str:
    backend = settings.sandbox.strip().lower()
    if backend not in BACKENDS:
        raise UsageError(f"Invalid sandbox {settings.sandbox!r}: use one of {', '.join(BACKENDS)}.")
    return backend
