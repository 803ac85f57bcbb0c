"""The run_command tool: one shell command in the sandbox, in the foreground or as a background process."""

from __future__ import annotations

from typing import Any

from agent.sandbox import CommandResult
from agent.tool import Tool, ToolContext, ToolError, ToolResult

DISPLAY_COMMAND_CHARS = 60
LIMIT_NAMES = {
    "timeout": "time limit",
    "output": "output limit",
    "cpu": "CPU time limit",
    "memory": "memory limit",
    "processes": "process limit",
    "file_size": "file size limit",
}


READ_ONLY_ERROR = "Read-only file system"
GIT_READ_ONLY_NOTE = (
    "commands cannot change .git (git commit, git config and the like fail); gemma-agent commits each "
    "step itself, so change the project's files and leave git to it."
)


class RunCommand(Tool):
    name = "run_command"
    description = (
        "Run a shell command in the workspace folder and return its exit code and output. "
        "No input can be typed. Use background: true for servers."
    )
    parameters = {
        "type": "object",
        "properties": {
            "command": {"type": "string", "description": "Shell command, e.g. python -m pytest -q"},
            "timeout": {"type": "integer", "description": "Seconds before the command is stopped"},
            "background": {"type": "boolean", "description": "Keep it running and return its first output"},
        },
        "required": ["command"],
    }

    def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        command = arguments["command"].strip()
        if not command:
            raise ToolError("The command is empty. Give a shell command, such as ls or python -m pytest -q.")
        timeout = arguments.get("timeout")
        if timeout is not None and timeout <= 0:
            raise ToolError(f"The timeout must be a positive number of seconds, not {timeout}.")
        if arguments.get("background"):
            result = context.sandbox.start(command)
            display = _display(command, _background_status(result))
            return ToolResult(background_text(result), display, data=_data(result))
        result = context.sandbox.run(command, timeout=timeout)
        # A failing command is shown as failed and counts for stuck detection; its output still goes back.
        succeeded = result.exit_code == 0
        return ToolResult(foreground_text(result), _display(command, _status(result)), ok=succeeded, data=_data(result))


def foreground_text(result: CommandResult) -> str:
    """Return the text the model reads for a finished or stopped command."""
    output = result.output.rstrip("\n") or "(no output)"
    if result.limit and result.exit_code is None:
        limit = LIMIT_NAMES[result.limit]
        return f"Stopped by the {limit}. {result.explanation}\nOutput before it was stopped:\n{output}"
    text = f"Exit code: {result.exit_code}\n{output}"
    if result.limit:
        text += f"\nNote: the command hit the {LIMIT_NAMES[result.limit]}. {result.explanation}"
    if ".git" in output and READ_ONLY_ERROR in output:
        text += f"\nNote: {GIT_READ_ONLY_NOTE}"
    return text


def background_text(result: CommandResult) -> str:
    """Return the text the model reads after starting a background process."""
    output = result.output.rstrip("\n") or "(no output yet)"
    if result.exit_code is not None:
        return (
            f"The background command already exited with code {result.exit_code}. Its output:\n{output}\n"
            "Fix the error, or run it without background to see it finish."
        )
    return (
        f"Started in the background as process {result.background_id}; it keeps running until the run ends.\n"
        f"Output so far:\n{output}\n"
        f"To see later output, run: tail -n 50 {result.log_path}"
    )


def _status(result: CommandResult) -> str:
    if result.limit and result.exit_code is None:
        return f"stopped: {LIMIT_NAMES[result.limit]}"
    return f"exit {result.exit_code} ({result.seconds:.1f}s)"


def _background_status(result: CommandResult) -> str:
    if result.exit_code is not None:
        return f"background process exited {result.exit_code}"
    return f"running in background (process {result.background_id})"


def _display(command: str, status: str) -> str:
    first_line = command.splitlines()[0]
    if len(first_line) > DISPLAY_COMMAND_CHARS or "\n" in command:
        first_line = first_line[: DISPLAY_COMMAND_CHARS - 1] + "…"
    return f"$ {first_line} → {status}"


def _data(result: CommandResult) -> dict[str, Any]:
    return {
        "exit_code": result.exit_code,
        "limit": result.limit,
        "seconds": round(result.seconds, 3),
        "log_path": result.log_path,
        "output_bytes": result.total_bytes,
        "background_id": result.background_id,
    }
