"""All screen output: renders loop events with rich, or writes them as JSON Lines for `--json`."""

from __future__ import annotations

import json
from typing import IO, Any

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from agent.events import STREAM_KINDS, Event

ARGUMENT_PREVIEW_CHARS = 60
RESULT_PREVIEW_CHARS = 120


def short(text: str, limit: int) -> str:
    """Return text on one line, cut to `limit` characters with an ellipsis."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def format_arguments(arguments: dict[str, Any]) -> str:
    """Show call arguments briefly: long strings as their size, short ones as they are."""
    parts = []
    for key, value in arguments.items():
        if isinstance(value, str) and ("\n" in value or len(value) > ARGUMENT_PREVIEW_CHARS):
            lines = value.count("\n") + (0 if value.endswith("\n") else 1)
            parts.append(f"{key}=<{lines} lines, {len(value)} chars>")
        else:
            parts.append(f"{key}={short(json.dumps(value, ensure_ascii=False), ARGUMENT_PREVIEW_CHARS)}")
    return " ".join(parts)


class ScreenRenderer:
    """Draws a run as it happens: plan, streamed text, each call and result, and the closing summary."""

    def __init__(self, console: Console | None = None, mask=None):
        self.console = console or Console(highlight=False)
        self.mask = mask or (lambda text: text)
        self._streaming = False
        # A tool call streams silently (its arguments are shown once parsed); a status line shows progress.
        self._call_status = None
        self._call_chars = 0
        self._streamed_steps: set[int] = set()

    def __call__(self, event: Event) -> None:
        if event.kind != "delta" and self._call_status is not None:
            self._stop_call_status()
        handler = getattr(self, f"_on_{event.kind}", None)
        if handler is not None:
            handler(event.data)

    def _end_stream(self) -> None:
        if self._streaming:
            self.console.print()
            self._streaming = False

    def _on_run_start(self, data: dict[str, Any]) -> None:
        self.console.print(f"[bold]gemma-agent[/bold] run {data['run_id']}")
        self.console.print(f"  task: {escape(short(data['task'], 200))}")
        self.console.print(f"  engine: {data['engine']} · model: {escape(data['model'])} · context: {data['context_size']}")
        self.console.print(f"  workspace: {escape(data['workspace'])} · sandbox: {data['sandbox']}")

    def _on_notice(self, data: dict[str, Any]) -> None:
        self._end_stream()
        self.console.print(f"[yellow]! {escape(self.mask(data['text']))}[/yellow]")

    def _on_compaction(self, data: dict[str, Any]) -> None:
        self._end_stream()
        before, after = data["tokens_before"], data["tokens_after"]
        self.console.print(f"[yellow]! context nearly full: old tool outputs shortened, {before} → {after} tokens[/yellow]")

    def _on_stuck_warning(self, data: dict[str, Any]) -> None:
        self._end_stream()
        self.console.print(f"[yellow]! the model repeated the same step {data['repeats']} times: {escape(short(data['action'], 100))}[/yellow]")

    def _on_delta(self, data: dict[str, Any]) -> None:
        if data["kind"] == "call":
            self._show_call_progress(len(data["text"]))
            return
        if self._call_status is not None:
            self._stop_call_status()
        step = data.get("step", 0)
        if data["kind"] == "text" and data["text"].strip() and step not in self._streamed_steps:
            self._streamed_steps.add(step)
            if step == 1:
                self.console.rule("plan", style="dim")
        style = "dim italic" if data["kind"] == "thinking" else ""
        self.console.print(escape(self.mask(data["text"])), end="", style=style, soft_wrap=True)
        self._streaming = True

    def _show_call_progress(self, added: int) -> None:
        self._call_chars += added
        text = f"the model is writing a tool call ({self._call_chars} characters so far)"
        if self._call_status is None:
            self._end_stream()
            self._call_status = self.console.status(text)
            self._call_status.start()
        else:
            self._call_status.update(text)

    def _stop_call_status(self) -> None:
        self._call_status.stop()
        self._call_status = None
        self._call_chars = 0

    def _on_plan(self, data: dict[str, Any]) -> None:
        self._end_stream()
        if 1 in self._streamed_steps:
            # The plan has just streamed onto the screen; a rule marks it instead of a second copy.
            self.console.rule(style="dim")
            return
        self.console.print(Panel(escape(data["text"] or "(no plan written)"), title="plan", expand=False))

    def _on_reply(self, data: dict[str, Any]) -> None:
        self._end_stream()
        for problem in data.get("problems", []):
            self.console.print(f"  [red]✗ call not run:[/red] {escape(short(problem, RESULT_PREVIEW_CHARS))}")

    def _on_tool_call(self, data: dict[str, Any]) -> None:
        self._end_stream()
        arguments = escape(self.mask(format_arguments(data["arguments"])))
        self.console.print(f"[cyan]→ {data['name']}[/cyan] {arguments}")

    def _on_tool_result(self, data: dict[str, Any]) -> None:
        mark = "[green]✓[/green]" if data["ok"] else "[red]✗[/red]"
        text = self.mask(data.get("display") or data["output"])
        self.console.print(f"  {mark} {escape(short(text, RESULT_PREVIEW_CHARS))}")

    def _on_checkpoint(self, data: dict[str, Any]) -> None:
        if data.get("commit"):
            self.console.print(f"  [dim]checkpoint {data['commit'][:8]}: {', '.join(data['committed'])}[/dim]")
        for skipped in data.get("skipped", []):
            self.console.print(f"  [dim]not committed: {escape(skipped['path'])} ({escape(skipped['reason'])})[/dim]")

    def _on_verification(self, data: dict[str, Any]) -> None:
        if data["passed"] and data.get("details", {}).get("tests") == 0:
            self.console.print("[dim]no tests in the workspace to check the work with[/dim]")
        elif data["passed"]:
            self.console.print("[green]✓ checks passed[/green]")
        else:
            self.console.print(f"[red]✗ checks failed:[/red] {escape(short(data['failure'], 300))}")

    def _on_repair(self, data: dict[str, Any]) -> None:
        self._end_stream()
        self.console.print(f"[yellow]→ fixing {escape(data['path'])}: the conversation starts again from the task and plan[/yellow]")

    def _on_run_end(self, data: dict[str, Any]) -> None:
        self._end_stream()
        self.console.print(summary_table(data))


def summary_table(data: dict[str, Any]) -> Table:
    """Return the closing summary of a run as a two-column table."""
    colour = "green" if data["status"] == "finished" else "red"
    table = Table(title="summary", show_header=False, expand=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    evaluated, cached = data["prompt_tokens_evaluated"], data["prompt_tokens_cached"]
    rows = [
        ("status", f"[{colour}]{data['status']}[/{colour}] (exit code {data['exit_code']})"),
        ("result", escape(short(data["message"], 300))),
        ("steps", f"{data['steps']} ({data['tool_calls']} tool calls, {data['refused_calls']} not run)"),
        ("files written", escape(", ".join(data["files_written"]) or "none")),
        ("tokens in", f"{data['prompt_tokens']} ({evaluated} evaluated, {cached} reused from cache)"),
        ("tokens out", f"{data['completion_tokens']} ({data['decode_tokens_per_second']} tokens/s)"),
        ("time", f"{data['seconds']} s"),
        ("trajectory", escape(data["trajectory"])),
    ]
    for name, value in rows:
        table.add_row(name, value)
    return table


class JsonLinesWriter:
    """Writes each event as one JSON line; streamed pieces of text are left out."""

    def __init__(self, stream: IO[str], mask=None):
        self.stream = stream
        self.mask = mask or (lambda text: text)

    def __call__(self, event: Event) -> None:
        if event.kind in STREAM_KINDS:
            return
        self.stream.write(self.mask(json.dumps(event.to_dict(), ensure_ascii=False, default=str)) + "\n")
        self.stream.flush()
