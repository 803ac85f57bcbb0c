"""A quick syntax check of a file just written, so the model hears about a broken file at once.

Python is parsed in-process. JavaScript, alone or inline in an HTML page, is checked with
`node --check` when Node.js is installed; without it such files are not checked.
"""

from __future__ import annotations

import ast
import logging
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

logger = logging.getLogger(__name__)

NODE_CHECK_TIMEOUT_SECONDS = 10
# Comments small models leave in place of the code they were asked for.
_CODE_NOUN = r"(?:code|logic|functions?|implementation|content|script)s?"
_PLACEHOLDER = re.compile(
    r"(?:#|//|/\*|<!--)\s*(?:"
    # "// Your JavaScript code goes here"
    rf"(?:your|the|add|insert|put|rest of|more|remaining)?\s*[\w ]{{0,30}}?{_CODE_NOUN}\s+(?:goes|go|will go|should go)\s+here"
    # "# your code here", "// add the logic here"
    rf"|(?:your|add|insert|put)\s+(?:\w+\s+){{0,2}}?{_CODE_NOUN}\s+here"
    # "// ... rest of the logic ...", "# ... existing code ...", "# rest of the functions"
    r"|\.{2,}\s*(?:the\s+)?(?:rest|more|remaining|other|existing|previous|same)\b"
    rf"|(?:the\s+)?(?:rest|remainder)\s+of\s+(?:the\s+|your\s+)?(?:\w+\s+)?{_CODE_NOUN}\b"
    r")",
    re.IGNORECASE,
)
_INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)([^>]*)>(.*?)</script>", re.DOTALL | re.IGNORECASE)
# A script element with another type (JSON data, templates) contains no JavaScript to check.
_SCRIPT_TYPE = re.compile(r"\btype\s*=\s*[\"']?([^\"'\s>]+)", re.IGNORECASE)
_JAVASCRIPT_TYPES = frozenset({"text/javascript", "application/javascript", "module"})


def syntax_problem(path: Path, content: str) -> str:
    """Return a one-line description of the first syntax error or placeholder in `content`, or ""."""
    return _syntax_error(path, content) or placeholder_problem(content)


def placeholder_problem(content: str) -> str:
    """Return where the file has a comment standing in for code ("// code goes here"), or "".

    Such a comment counts only where its block ends right after it, so a leftover comment above
    code that was written after all is not reported.
    """
    lines = content.splitlines()
    for index, line in enumerate(lines):
        if _PLACEHOLDER.search(line) and _block_ends_after(lines, index):
            return f"line {index + 1} is a placeholder, not code: {line.strip()[:80]!r}. The real code must replace it."
    return ""


def _block_ends_after(lines: list[str], index: int) -> bool:
    indent = len(lines[index]) - len(lines[index].lstrip())
    following = next((line for line in lines[index + 1:] if line.strip()), None)
    if following is None:
        return True
    stripped = following.lstrip()
    return stripped.startswith(("</", "}", "]", ")")) or len(following) - len(stripped) < indent


def _syntax_error(path: Path, content: str) -> str:
    suffix = path.suffix.lower()
    if suffix == ".py":
        return _python_problem(content)
    if suffix in (".js", ".mjs"):
        return _javascript_problem(content, line_offset=0)
    if suffix in (".html", ".htm"):
        return _html_scripts_problem(content)
    return ""


# A syntax error quotes its line, cut to this many characters.
MAX_QUOTED_LINE = 120
# Hints for syntax errors a small model kept repeating when shown only Python's message (Qwen2.5-Coder-1.5B
# put the task's regular expression, which contains a quote, inside single quotes).
_PYTHON_HINTS = {
    "unterminated string literal": "a quote character inside the string ends it early, or its closing quote is missing",
}


def _python_problem(content: str) -> str:
    try:
        ast.parse(content)
    except SyntaxError as error:
        message = f"Python syntax error at line {error.lineno}: {error.msg}"
        lines = content.splitlines()
        if error.lineno and 0 < error.lineno <= len(lines) and lines[error.lineno - 1].strip():
            message += f" in `{lines[error.lineno - 1].strip()[:MAX_QUOTED_LINE]}`"
        hint = next((text for start, text in _PYTHON_HINTS.items() if error.msg.startswith(start)), "")
        return f"{message} ({hint})." if hint else f"{message}."
    return ""


def requote_python_string(path: Path, content: str) -> tuple[str, str]:
    """Requote a Python string that contains its own quote character, when that alone makes the file parse.

    Small models put text such as the pattern `[a-z]+(?:'[a-z]+)*` inside single quotes, and then
    repeat the same line after every error message. Python reports the quote that opens the
    unterminated rest of the line. Where the intended string ends there and contains exactly one quote of
    its own kind, with text on both sides of it (so it starts at the second quote before), both its
    quotes become the other kind.
    Any other shape is left to the model: a guess there could change what the line means.
    Returns the content, changed or not, and a note for the model ("" when unchanged).
    """
    if path.suffix.lower() != ".py":
        return content, ""
    try:
        ast.parse(content)
        return content, ""
    except SyntaxError as error:
        if not error.msg.startswith("unterminated string literal") or not error.lineno or not error.offset:
            return content, ""
        number, end = error.lineno, error.offset - 1
    if re.search(r"\r(?!\n)", content):
        # Python counts a lone carriage return as a line break, so the lines below would not match its numbers.
        return content, ""
    lines = content.split("\n")
    if number > len(lines):
        return content, ""
    line = lines[number - 1]
    if not 0 <= end < len(line) or line[end] not in "'\"":
        return content, ""
    quote = line[end]
    other = "'" if quote == '"' else '"'
    earlier = [index for index in range(end) if line[index] == quote]
    if len(earlier) < 2 or other in line[earlier[-2]:end]:
        return content, ""
    start, inner = earlier[-2], earlier[-1]
    if line[inner - 1].isspace() or line[inner + 1].isspace():
        # A quote inside a word or a pattern (don't, (?:'[a-z]) has text on both sides. One next to a
        # space more likely closes a string, with the last string's closing quote missing instead.
        return content, ""
    fixed = f"{line[:start]}{other}{line[start + 1:end]}{other}{line[end + 1:]}"
    candidate = "\n".join(lines[:number - 1] + [fixed] + lines[number:])
    try:
        ast.parse(candidate)
    except SyntaxError:
        return content, ""
    quoted = fixed.strip()[:MAX_QUOTED_LINE]
    return candidate, f"Line {number} had a {quote} inside a string quoted with {quote}; that string is now quoted with {other}: `{quoted}`."


def _html_scripts_problem(content: str) -> str:
    for match in _INLINE_SCRIPT.finditer(content):
        script_type = _SCRIPT_TYPE.search(match.group(1))
        if script_type and script_type.group(1).lower() not in _JAVASCRIPT_TYPES:
            continue
        line_offset = content.count("\n", 0, match.start(2))
        problem = _javascript_problem(match.group(2), line_offset)
        if problem:
            return problem
    return ""


def _javascript_problem(script: str, line_offset: int) -> str:
    node = shutil.which("node")
    if node is None or not script.strip():
        return ""
    with tempfile.NamedTemporaryFile("w", suffix=".js", encoding="utf-8") as handle:
        handle.write(script)
        handle.flush()
        try:
            completed = subprocess.run(
                [node, "--check", handle.name], capture_output=True, text=True, timeout=NODE_CHECK_TIMEOUT_SECONDS
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            logger.debug("node --check did not run: %s", error)
            return ""
    if completed.returncode == 0:
        return ""
    return _node_message(completed.stderr, line_offset)


def _node_message(stderr: str, line_offset: int) -> str:
    """Turn node's report (file:LINE, the source line, a caret, then `SyntaxError: ...`) into one line."""
    line_match = re.search(r":(\d+)\s*$", stderr.splitlines()[0]) if stderr else None
    error_match = re.search(r"^(SyntaxError: .*)$", stderr, re.MULTILINE)
    message = error_match.group(1) if error_match else "JavaScript syntax error"
    if line_match:
        return f"JavaScript {message} at line {int(line_match.group(1)) + line_offset}."
    return f"JavaScript {message}."
