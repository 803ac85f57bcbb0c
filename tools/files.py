"""File tools: read, write, edit, list and search files inside the workspace."""

from __future__ import annotations

import itertools
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from agent.tool import Tool, ToolContext, ToolError, ToolResult

MAX_READ_LINES = 400
MAX_LIST_ENTRIES = 300
MAX_SEARCH_MATCHES = 100
MAX_SEARCH_FILE_BYTES = 2_000_000
SKIPPED_DIRS = frozenset({".git", ".gemma-agent", "node_modules", "__pycache__", ".venv", "venv", ".pytest_cache"})


def write_atomically(path: Path, data: str | bytes) -> None:
    """Write a file through a temporary file and a rename, so an interrupted write leaves no half file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    mode = path.stat().st_mode & 0o777 if path.exists() else None
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(raw)
        if mode is not None:
            os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def read_text(path: Path, shown: str) -> str:
    """Read a text file, refusing binary files and directories with a message for the model."""
    if path.is_dir():
        raise ToolError(f"{shown} is a folder, not a file. Use list_files to see what it holds.")
    if not path.exists():
        raise ToolError(f"{shown} does not exist. Use list_files to see which files exist.")
    raw = path.read_bytes()
    if b"\0" in raw[:8192]:
        raise ToolError(f"{shown} is a binary file, not text; it cannot be read or edited as text.")
    return raw.decode("utf-8", errors="replace")


class ReadFile(Tool):
    name = "read_file"
    description = "Read a text file. Lines are shown with their numbers."
    parameters = {
        "type": "object",
        "properties": {
            "path": {"type": "string", "description": "File path"},
            "start_line": {"type": "integer", "description": "First line to show, from 1"},
            "end_line": {"type": "integer", "description": "Last line to show"},
        },
        "required": ["path"],
    }

    def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        path = context.workspace.resolve(arguments["path"])
        lines = read_text(path, arguments["path"]).splitlines()
        start = max(1, arguments.get("start_line", 1))
        end = min(len(lines), arguments.get("end_line", start + MAX_READ_LINES - 1), start + MAX_READ_LINES - 1)
        shown = "\n".join(f"{number:4d}  {lines[number - 1]}" for number in range(start, end + 1))
        if not lines:
            shown = "(the file is empty)"
        elif end < len(lines):
            shown += f"\n[lines {start}-{end} of {len(lines)}; pass start_line={end + 1} to read on]"
        return ToolResult(shown, f"{arguments['path']} lines {start}-{end} of {len(lines)}")


class WriteFile(Tool):
    name = "write_file"
    description = "Write a whole file, creating folders as needed. Replaces the file if it exists."
    parameters = {
        "type": "object",
        "properties": {
            "path": {"type": "string", "description": "File path"},
            "content": {"type": "string", "description": "The complete file content"},
        },
        "required": ["path", "content"],
    }
    changes_files = True

    def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        path = context.workspace.resolve(arguments["path"])
        if path.is_dir():
            raise ToolError(f"{arguments['path']} is a folder. Give a file path inside it.")
        content = arguments["content"]
        existed = path.exists()
        write_atomically(path, content)
        relative = context.workspace.relative(path)
        lines = content.count("\n") + (0 if content.endswith("\n") or not content else 1)
        verb = "Replaced" if existed else "Created"
        return ToolResult(f"{verb} {relative} ({lines} lines).", f"{verb.lower()} {relative}, {lines} lines", changed=[relative])


class EditFile(Tool):
    name = "edit_file"
    description = "Replace one exact piece of text in a file. search must match exactly once."
    parameters = {
        "type": "object",
        "properties": {
            "path": {"type": "string", "description": "File path"},
            "search": {"type": "string", "description": "Exact text to find"},
            "replace": {"type": "string", "description": "Text to put in its place"},
        },
        "required": ["path", "search", "replace"],
    }
    changes_files = True

    def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        path = context.workspace.resolve(arguments["path"])
        text = read_text(path, arguments["path"])
        search, replace = arguments["search"], arguments["replace"]
        if not search:
            raise ToolError("search is empty. Give the exact text to replace, or use write_file for a whole file.")
        count = text.count(search)
        if count != 1:
            raise ToolError(_no_unique_match(arguments["path"], text, search, count))
        write_atomically(path, text.replace(search, replace, 1))
        relative = context.workspace.relative(path)
        return ToolResult(f"Edited {relative}.", f"edited {relative}", changed=[relative])


def _no_unique_match(shown: str, text: str, search: str, count: int) -> str:
    if count > 1:
        return f"search matches {count} places in {shown}. Add lines around it so it matches exactly one place."
    first_line = search.strip().splitlines()[0].strip() if search.strip() else ""
    closest = [number for number, line in enumerate(text.splitlines(), start=1) if first_line and first_line in line]
    hint = f" Its first line appears at line {closest[0]}; read_file that part and copy the text exactly." if closest else ""
    return f"search was not found in {shown}.{hint} Read the file first and copy the text exactly."


class ListFiles(Tool):
    name = "list_files"
    description = "List the files in a folder and its subfolders."
    parameters = {
        "type": "object",
        "properties": {"path": {"type": "string", "description": "Folder path, default the project folder"}},
        "required": [],
    }

    def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        folder = context.workspace.resolve(arguments.get("path") or ".")
        if not folder.is_dir():
            raise ToolError(f"{arguments.get('path')} is not a folder.")
        files = [context.workspace.relative(path) for path in walk_files(folder)]
        shown = files[:MAX_LIST_ENTRIES]
        text = "\n".join(shown) if shown else "(no files)"
        if len(files) > len(shown):
            text += f"\n[{len(files) - len(shown)} more files not shown; list a subfolder]"
        return ToolResult(text, f"{len(files)} files")


class SearchFiles(Tool):
    name = "search_files"
    description = "Search file contents with a regular expression. Shows path:line: text."
    parameters = {
        "type": "object",
        "properties": {
            "pattern": {"type": "string", "description": "Regular expression"},
            "path": {"type": "string", "description": "Folder to search, default the project folder"},
        },
        "required": ["pattern"],
    }

    def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        try:
            regex = re.compile(arguments["pattern"])
        except re.error as error:
            raise ToolError(f"The pattern is not a valid regular expression: {error}.") from None
        folder = context.workspace.resolve(arguments.get("path") or ".")
        matches = list(itertools.islice(_search(regex, folder, context), MAX_SEARCH_MATCHES + 1))
        text = "\n".join(matches[:MAX_SEARCH_MATCHES]) or "(no matches)"
        if len(matches) > MAX_SEARCH_MATCHES:
            text += f"\n[more than {MAX_SEARCH_MATCHES} matches; narrow the pattern or the folder]"
        return ToolResult(text, f"{min(len(matches), MAX_SEARCH_MATCHES)} matches")


def _search(regex: re.Pattern, folder: Path, context: ToolContext):
    for path in walk_files(folder):
        if path.stat().st_size > MAX_SEARCH_FILE_BYTES:
            continue
        raw = path.read_bytes()
        if b"\0" in raw[:8192]:
            continue
        for number, line in enumerate(raw.decode("utf-8", errors="replace").splitlines(), start=1):
            if regex.search(line):
                yield f"{context.workspace.relative(path)}:{number}: {line.strip()[:200]}"


def walk_files(folder: Path):
    """Yield the files below `folder` in sorted order, skipping VCS, cache and dependency folders."""
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS and not Path(root, d).is_symlink())
        for name in sorted(files):
            yield Path(root, name)
