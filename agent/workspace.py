"""The workspace folder: every path a tool touches is resolved inside it."""

from __future__ import annotations

import os
from pathlib import Path

from agent.tool import ToolError

AGENT_DIR = ".gemma-agent"
# A repository's data folder, or a file naming it elsewhere (worktrees, submodules).
GIT_DIR = ".git"


class PathOutsideWorkspace(ToolError):
    """A path that resolves outside the workspace, directly, through `..` or through a symlink."""


class Workspace:
    """A folder the agent works in, with its private `.gemma-agent/` folder for runs and logs."""

    def __init__(self, root: Path | str):
        self.root = Path(root).expanduser().resolve()

    @property
    def agent_dir(self) -> Path:
        return self.root / AGENT_DIR

    def runs_dir(self) -> Path:
        return self.agent_dir / "runs"

    def create(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.agent_dir.mkdir(exist_ok=True)

    def resolve(self, path: str) -> Path:
        """Return the absolute path of `path` inside the workspace, following symlinks.

        Raises PathOutsideWorkspace for an absolute path elsewhere, `..` that leaves the folder, or a
        symlink whose target is outside; this holds for files that do not exist yet too.
        """
        if not path or not path.strip():
            raise ToolError("The path is empty. Give a path relative to the workspace, such as src/app.py.")
        candidate = Path(path.strip())
        if not candidate.is_absolute():
            candidate = self.root / candidate
        resolved = Path(os.path.realpath(candidate))
        if resolved != self.root and self.root not in resolved.parents:
            raise PathOutsideWorkspace(
                f"The path {path!r} is outside the workspace. Use a path relative to the workspace, such as "
                f"{Path(path).name or 'file.txt'}."
            )
        parts = resolved.relative_to(self.root).parts
        if AGENT_DIR in parts:
            raise PathOutsideWorkspace(f"The path {path!r} is inside {AGENT_DIR}/, which belongs to gemma-agent.")
        # Git runs programs that .git/config names, outside the sandbox, so .git is off limits. The path as
        # given is checked too (a symlink named .git), in lower case for case-insensitive disks.
        given = candidate.relative_to(self.root).parts if candidate.is_relative_to(self.root) else ()
        if GIT_DIR in {part.lower() for part in (*parts, *given)}:
            raise PathOutsideWorkspace(
                f"The path {path!r} is inside {GIT_DIR}, git's own data, which the tools may not read or change. "
                f"gemma-agent commits each step itself; edit the project's files instead."
            )
        return resolved

    def relative(self, path: Path) -> str:
        """Return a path inside the workspace as a relative POSIX string."""
        return Path(path).resolve().relative_to(self.root).as_posix()
