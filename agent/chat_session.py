"""`gemma-agent chat`: an interactive session on one growing history, with the same tools as a build.

Each user message continues the loop's history (`Loop.continue_with`), so the engine re-evaluates only
the new tokens. Lines starting with `/` are commands for the session, not messages to the model.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from agent.config import Settings
from agent.events import EventBus, EventHandler
from agent.loop import Loop, RunResult
from agent.tool import ToolContext
from agent.trajectory import TRAJECTORY_FILE, TrajectoryWriter, new_run_id
from agent.workspace import Workspace

logger = logging.getLogger(__name__)

PROMPT = "you> "
CHAT_TASK = "interactive chat"
HELP_TEXT = """Commands:
  /undo    undo the agent's last checkpointed step (files go back; the model is told)
  /diff    show the changes of this session's steps
  /clear   start a new conversation (the history and the prompt cache are dropped)
  /model   show the engine, model file, quantization and context size
  /help    show this list
  /exit    end the session (Ctrl-D does too)
Anything else is a message to the model. Ctrl-C stops the current reply, not the session."""


class ChatSession:
    """Reads messages from `read_line`, runs each through the loop, and handles slash commands."""

    def __init__(
        self,
        settings: Settings,
        workspace_dir: Path,
        engine,
        *,
        console: Console | None = None,
        handlers: list[EventHandler] | None = None,
        read_line: Callable[[str], str] = input,
    ):
        self.settings = settings
        self.workspace = Workspace(workspace_dir)
        self.engine = engine
        self.console = console or Console(highlight=False)
        self.handlers = handlers or []
        self.read_line = read_line
        self.pending_note = ""
        self.run_id = new_run_id()

    def run(self) -> int:
        """Run until /exit or end of input; return the exit code (0)."""
        from agent.sandbox import create_sandbox
        from agent.session import resolve_write_mode
        from tools import default_toolset

        sandbox = create_sandbox(self.settings, self.workspace.root)
        self.workspace.create()
        writer = TrajectoryWriter(self.workspace.runs_dir() / self.run_id / TRAJECTORY_FILE, mask=_secret_masker())
        bus = EventBus(writer, *self.handlers)
        checkpointer = self._start_checkpoints(bus)
        try:
            self.loop = Loop(self.engine, default_toolset(resolve_write_mode(self.settings, self.engine)), ToolContext(self.workspace, sandbox, self.settings), bus, committer=checkpointer)
            self._greet()
            self._read_messages()
        finally:
            if checkpointer is not None:
                checkpointer.checkpointer.end_run(self.run_id, "chat ended")
            sandbox.close()
            writer.close()
        return 0

    def _start_checkpoints(self, bus: EventBus):
        from agent.session import _StepCommitter, _start_checkpoints

        checkpointer = _start_checkpoints(self.settings, self.workspace, self.run_id, CHAT_TASK, bus)
        return _StepCommitter(checkpointer, self.run_id) if checkpointer else None

    def _greet(self) -> None:
        self.console.print(f"[bold]gemma-agent chat[/bold] · model: {escape(self.engine.model_name)} · workspace: {escape(str(self.workspace.root))}")
        self.console.print("Type a message, or /help for commands.")

    def _read_messages(self) -> None:
        while True:
            try:
                line = self.read_line(PROMPT).strip()
            except EOFError:
                self.console.print()
                return
            except KeyboardInterrupt:
                self.console.print("\n(Use /exit or Ctrl-D to end the session.)")
                continue
            if not line:
                continue
            if line.startswith("/"):
                if not self.handle_command(line):
                    return
                continue
            self.send(line)

    def send(self, text: str) -> RunResult:
        """Send one user message and run the turn; a note about an /undo goes in front of it."""
        if self.pending_note:
            text = f"{self.pending_note}\n\n{text}"
            self.pending_note = ""
        result = self.loop.continue_with(text)
        if result.status not in ("answered", "finished"):
            self.console.print(f"[yellow]! turn ended: {result.status}: {escape(result.summary)}[/yellow]")
        elif result.status == "finished":
            self.console.print(f"[green]✓ done:[/green] {escape(result.summary)}")
        return result

    def handle_command(self, line: str) -> bool:
        """Run a slash command; return False when the session should end."""
        name = line.split()[0].lower()
        if name in ("/exit", "/quit"):
            return False
        commands = {"/help": self._help, "/clear": self._clear, "/model": self._model, "/undo": self._undo, "/diff": self._diff}
        command = commands.get(name)
        if command is None:
            self.console.print(f"Unknown command {escape(name)}. Type /help for the list.")
            return True
        try:
            command()
        except Exception as error:  # a failed command is reported and the session goes on
            logger.debug("chat command %s failed", name, exc_info=True)
            self.console.print(f"[red]{escape(name)} failed:[/red] {escape(str(error))}")
        return True

    def _help(self) -> None:
        self.console.print(HELP_TEXT, markup=False)

    def _clear(self) -> None:
        self.loop.messages = []
        self.pending_note = ""
        self.console.print("Started a new conversation; the files in the workspace stay as they are.")

    def _model(self) -> None:
        engine = self.engine
        self.console.print(f"engine: {engine.name} · model: {escape(engine.model_name)} · context: {engine.context_size} tokens")
        if self.settings.engine == "llamacpp" and self.settings.model:
            from agent.models import describe_model_file

            found = describe_model_file(Path(self.settings.model))
            self.console.print(
                f"file: {escape(str(found.path))} · {found.architecture} · {found.quantization} · "
                f"trained context {found.context_length} · chat template: {'embedded' if found.chat_template else 'built-in'}"
            )
        used = self.engine.count_tokens(self.loop.messages, self.loop.tools.specs()) if self.loop.messages else 0
        self.console.print(f"history: {len(self.loop.messages)} messages, about {used} tokens")

    def _undo(self) -> None:
        from agent.history import undo

        result = undo(self.workspace.root, steps=1)
        lines = result.describe()
        for line in lines:
            self.console.print(escape(line))
        self.pending_note = "(The user undid your last step: " + " ".join(lines[:2]) + " Check the files before you continue.)"

    def _diff(self) -> None:
        from agent.history import diff_text

        text = diff_text(self.workspace.root, self.run_id)
        self.console.print(escape(text) if text.strip() else "No changes in this session yet.")


def _secret_masker():
    from agent.session import _secret_masker as masker

    return masker()
