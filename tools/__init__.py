"""The tools the model can call, one module per family."""

from __future__ import annotations

from agent.tool import ToolSet


def default_toolset(write_mode: str = "calls") -> ToolSet:
    """Return the tools of a `gemma-agent build` run.

    `write_mode` "blocks" declares write_file with a path only: the file's content comes in the
    model's next reply, as a code block (see agent.blocks).
    """
    from tools.files import EditFile, ListFiles, ReadFile, SearchFiles, WriteFile, WriteFileFromBlock
    from tools.finish import Finish
    from tools.shell import RunCommand

    writer = WriteFileFromBlock() if write_mode == "blocks" else WriteFile()
    return ToolSet([ReadFile(), writer, EditFile(), ListFiles(), SearchFiles(), RunCommand(), Finish()])
