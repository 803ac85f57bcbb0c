"""File tools: read, write, edit, list and search files inside the workspace."""

from __future__ import annotations

import itertools
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from agent.prompts import render_prompt
from agent.tool import Tool, ToolContext, ToolError, ToolResult
from agent.workspace import PathOutsideWorkspace, Workspace
from tools.edits import apply_edit
from tools.syntax import requote_python_string, syntax_problem
from tools.textfile import TextFile, decode

MAX_READ_LINES = 400
MAX_LIST_ENTRIES = 300
MAX_SEARCH_MATCHES = 100
MAX_SEARCH_FILE_BYTES = 2_000_000
MARKDOWN_SUFFIXES = frozenset({".md", ".markdown", ".mdx"})
SKIPPED_DIRS = frozenset({".git", ".gemma-agent", "node_modules", "__pycache__", ".venv", "venv", ".pytest_cache"})


def write_atomically(path: Path, data: str | bytes) -> None:
    """Write a file through a temporary file and a rename, so an interrupted write leaves no half file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    # mkstemp creates the file private (0600); a new file gets the mode open() would give it instead.
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o666 & ~_current_umask()
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(raw)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def read_file(path: Path, shown: str) -> TextFile:
    """Read a text file in its own encoding, rejecting folders, missing files and binary files with a message for the model."""
    if path.is_dir():
        raise ToolError(f"{shown} is a folder, not a file. Use list_files to see what it contains.")
    if not path.exists():
        raise ToolError(f"{shown} does not exist yet. To create it, call write_file with its whole content.")
    return decode(path.read_bytes(), shown)


def read_text(path: Path, shown: str) -> str:
    """Return the text of a file, as read_file decodes it."""
    return read_file(path, shown).text


def split_lines(text: str) -> list[str]:
    """Split text into lines on LF alone, as edits count them, without the line endings."""
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    return lines[:-1] if lines and lines[-1] == "" else lines


def unwrap_code_fence(path: Path, content: str) -> str:
    """Return the code inside one pair of ``` fences wrapping a whole non-Markdown file, else the content as given."""
    if path.suffix.lower() in MARKDOWN_SUFFIXES:
        return content
    lines = content.strip().split("\n")
    fences = [line for line in lines if line.lstrip().startswith("```")]
    if len(lines) < 2 or len(fences) != 2 or not lines[0].startswith("```") or lines[-1].strip() != "```":
        return content
    return "\n".join(lines[1:-1]) + "\n"


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
        lines = split_lines(read_text(path, arguments["path"]))
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
        content = unwrap_code_fence(path, arguments["content"])
        note = " The ``` fences around the content were removed." if content != arguments["content"] else ""
        content, requoted = requote_python_string(path, content)
        note += f" {requoted}" if requoted else ""
        existed = path.exists()
        write_atomically(path, _existing_encoding(path).encode(content, arguments["path"]))
        relative = context.workspace.relative(path)
        lines = len(split_lines(content))
        verb = "Replaced" if existed else "Created"
        display = f"{verb.lower()} {relative}, {lines} lines" + (", one string requoted" if requoted else "")
        result = ToolResult(f"{verb} {relative} ({lines} lines).{note}", display, changed=[relative])
        return with_syntax_check(result, path, content)


def with_syntax_check(result: ToolResult, path: Path, content: str) -> ToolResult:
    """Add the first syntax error of the file just written to the result; the file is kept as written."""
    problem = syntax_problem(path, content)
    if not problem:
        return result
    result.output += f" But it has an error: {problem} Write the whole file again with write_file, corrected."
    result.display += f", {problem}"
    result.ok = False
    return result


def _existing_encoding(path: Path) -> TextFile:
    """Return the encoding of the text file at `path`, so a rewrite keeps it; UTF-8 for new or binary files."""
    if not path.is_file():
        return TextFile("")
    try:
        return decode(path.read_bytes(), path.name)
    except ToolError:
        return TextFile("")


class EditFile(Tool):
    name = "edit_file"
    description = "Replace one piece of text in a file. search must match exactly one place; copy it from read_file."
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
        original = read_file(path, arguments["path"])
        applied = apply_edit(original.text, arguments["search"], arguments["replace"], arguments["path"])
        text, requoted = requote_python_string(path, applied.text)
        write_atomically(path, original.encode(text, arguments["path"]))
        relative = context.workspace.relative(path)
        how = "" if applied.method == "exact" else f" (search matched with different {applied.method})"
        note = f" {requoted}" if requoted else ""
        display = f"edited {relative}{how}" + (", one string requoted" if requoted else "")
        result = ToolResult(f"Edited {relative}.{how}{note}", display, changed=[relative])
        return with_syntax_check(result, path, path.read_text(encoding="utf-8", errors="replace"))


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
        files = [_listed(path, context.workspace) for path in walk_files(folder)]
        shown = files[:MAX_LIST_ENTRIES]
        text = "\n".join(shown) if shown else "(no files yet: the folder is empty)"
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


def _listed(path: Path, workspace: Workspace) -> str:
    """Return the path as list_files shows it: a symlink by its own name, marked when it leads out of the workspace."""
    shown = _shown_path(path, workspace)
    if path.is_symlink() and _leads_outside(path, workspace):
        return f"{shown} -> (outside the workspace)"
    return shown


def _shown_path(path: Path, workspace: Workspace) -> str:
    # Not resolved: a symlink is shown under its own name, and one leading outside has no path inside.
    return path.relative_to(workspace.root).as_posix()


def _leads_outside(path: Path, workspace: Workspace) -> bool:
    try:
        workspace.resolve(str(path))
    except PathOutsideWorkspace:
        return True
    return False


def _search(regex: re.Pattern, folder: Path, context: ToolContext):
    for path in walk_files(folder):
        # A symlink out of the workspace is never read through; a dangling one has nothing to read.
        if path.is_symlink() and _leads_outside(path, context.workspace):
            continue
        if not path.is_file() or path.stat().st_size > MAX_SEARCH_FILE_BYTES:
            continue
        try:
            text = decode(path.read_bytes(), path.name).text
        except ToolError:
            continue
        for number, line in enumerate(split_lines(text), start=1):
            if regex.search(line):
                yield f"{_shown_path(path, context.workspace)}:{number}: {line.strip()[:200]}"


def walk_files(folder: Path):
    """Yield the files below `folder` in sorted order, skipping VCS, cache and dependency folders."""
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS and not Path(root, d).is_symlink())
        for name in sorted(files):
            yield Path(root, name)


class WriteFileFromBlock(WriteFile):
    """write_file in blocks mode: the call names the file, the model's next reply holds its content."""

    description = "Write a whole file: give its path here, then its complete content in one code block in your next reply."
    parameters = {
        "type": "object",
        "properties": {"path": {"type": "string", "description": "File path"}},
        "required": ["path"],
    }

    def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        path = context.workspace.resolve(arguments["path"])
        if path.is_dir():
            raise ToolError(f"{arguments['path']} is a folder. Give a file path inside it.")
        relative = context.workspace.relative(path)
        request = render_prompt("write_content", path=relative)
        return ToolResult(request, f"waiting for the content of {relative}", data={"content_request": relative})

    def write_content(self, arguments: dict[str, Any], content: str, context: ToolContext) -> ToolResult:
        return WriteFile.run(self, {"path": arguments["path"], "content": content}, context)
