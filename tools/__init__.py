"""The tools the model can call, one module per family."""

from __future__ import annotations

from agent.tool import ToolSet


def default_toolset() -> ToolSet:
    """Return the tools of a `gemma-agent build` run."""
    from tools.files import EditFile, ListFiles, ReadFile, SearchFiles, WriteFile
    from tools.finish import Finish
    from tools.shell import RunCommand

    return ToolSet([ReadFile(), WriteFile(), EditFile(), ListFiles(), SearchFiles(), RunCommand(), Finish()])
