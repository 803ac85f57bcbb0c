"""Apply a search-and-replace edit where a careful person would, or explain why it does not apply.

Matching goes from strict to loose and stops at the first method that finds anything. First the
exact text, then the text with other line endings (a CRLF file keeps CRLF), then whole lines
compared without their indentation, with the replacement re-indented to the file's style. When the search text carries
the line-number prefixes that read_file adds, the chain runs again without them. Zero or several
matches change nothing; the error shows the closest lines with their whitespace made visible.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass

from agent.tool import ToolError

# read_file shows each line as `%4d  ` + text; models often copy that prefix into edits.
LINE_NUMBER_PREFIX = re.compile(r"^(?: {3}\d| {2}\d{2}| \d{3}|\d{4,})  ")
TAB_WIDTH = 4
MAX_SHOWN_LINES = 8
# Finding the closest lines compares every window of the file; past this many lines only the first is searched for.
MAX_SCANNED_LINES = 5000


@dataclass
class Match:
    """One place the search text matched: character offsets in the file and the text to put there."""

    start: int
    end: int
    replacement: str


@dataclass
class Applied:
    """A successful edit: the new file text and how the search text was matched."""

    text: str
    method: str


Method = Callable[[str, str, str], list[Match]]


def apply_edit(text: str, search: str, replace: str, shown: str) -> Applied:
    """Return the file text with `search` replaced by `replace`, or raise ToolError when it does not match once."""
    if not search.strip():
        raise ToolError("search is empty. Give the exact text to replace, or use write_file for a whole file.")
    attempts = [(search, replace)]
    unnumbered = strip_line_numbers(search)
    if unnumbered != search:
        attempts.append((unnumbered, strip_line_numbers(replace)))

    for attempt_search, attempt_replace in attempts:
        for name, method in METHODS:
            matches = method(text, attempt_search, attempt_replace)
            if len(matches) > 1:
                raise ToolError(_ambiguous_message(text, matches, shown))
            if matches:
                return Applied(keep_final_newline(text, _splice(text, matches[0])), name)
    raise ToolError(no_match_message(text, attempts[-1][0], shown))


def strip_line_numbers(text: str) -> str:
    """Remove read_file's line-number prefixes, but only when every non-blank line has one."""
    lines = text.split("\n")
    if not all(LINE_NUMBER_PREFIX.match(line) for line in lines if line.strip()):
        return text
    return "\n".join(LINE_NUMBER_PREFIX.sub("", line, count=1) for line in lines)


def keep_final_newline(original: str, edited: str) -> str:
    """Put back the final newline an edit removed, in the file's own line-ending style."""
    if original.endswith("\n") and edited and not edited.endswith("\n"):
        return edited + ("\r\n" if original.endswith("\r\n") else "\n")
    return edited


def _splice(text: str, match: Match) -> str:
    return text[: match.start] + match.replacement + text[match.end :]


def match_exact(text: str, search: str, replace: str) -> list[Match]:
    matches, start = [], text.find(search)
    while start != -1:
        if not _inside_indentation(text, start, search):
            matches.append(Match(start, start + len(search), replace))
        start = text.find(search, start + len(search))
    return matches


def _inside_indentation(text: str, start: int, search: str) -> bool:
    """Tell whether an indented search text matched only part of a line's indentation.

    Such a match would leave the rest of the indentation in front of the replacement, so it is left
    to the indentation method, which replaces whole lines.
    """
    if not search[:1].isspace() or start == 0:
        return False
    line_start = text.rfind("\n", 0, start) + 1
    return text[start - 1] in " \t" and not text[line_start:start].strip(" \t")


def match_line_endings(text: str, search: str, replace: str) -> list[Match]:
    """Match with LF and CRLF treated alike; the replacement takes the file's line endings."""
    if "\r" not in text and "\r" not in search:
        return []
    crlf_file = "\r\n" in text and text.count("\r\n") == text.count("\n")
    if "\r" in text and not crlf_file:
        return []  # Mixed endings: left to the line-by-line method, which keeps each line's own ending.
    unified = text.replace("\r\n", "\n")
    search, replace = search.replace("\r\n", "\n"), replace.replace("\r\n", "\n")
    if crlf_file:
        replace = replace.replace("\n", "\r\n")
    matches = []
    for match in match_exact(unified, search, replace):
        # Each LF before an offset in the unified text stood for two characters in a CRLF file.
        shift_start = unified.count("\n", 0, match.start) if crlf_file else 0
        shift_end = unified.count("\n", 0, match.end) if crlf_file else 0
        matches.append(Match(match.start + shift_start, match.end + shift_end, match.replacement))
    return matches


def match_indentation(text: str, search: str, replace: str) -> list[Match]:
    """Match whole lines compared without surrounding whitespace, and re-indent the replacement to fit."""
    lines = text.split("\n")
    search_lines = _block_lines(search)
    count = len(search_lines)
    wanted = [line.strip() for line in search_lines]
    offsets = _line_offsets(lines)
    matches = []
    for first in range(len(lines) - count + 1):
        window = lines[first : first + count]
        if [line.strip() for line in window] == wanted:
            matches.append(_line_match(text, offsets, first, window, search_lines, replace))
    return matches


def _block_lines(text: str) -> list[str]:
    lines = text.replace("\r\n", "\n").split("\n")
    return lines[:-1] if len(lines) > 1 and lines[-1] == "" else lines


def _line_offsets(lines: list[str]) -> list[int]:
    offsets, position = [], 0
    for line in lines:
        offsets.append(position)
        position += len(line) + 1
    return offsets


def _line_match(text: str, offsets: list[int], first: int, window: list[str], search_lines: list[str], replace: str) -> Match:
    start = offsets[first]
    end = offsets[first + len(window) - 1] + len(window[-1])
    carriage = "\r" if window[-1].endswith("\r") else ""
    new_lines = _block_lines(replace) if replace.strip() else []
    if not new_lines:
        # Deleting the lines takes their newline too, so no empty line is left behind.
        return Match(start, min(end + 1, len(text)), "")
    reindented = reindent(new_lines, search_lines, [line.rstrip("\r") for line in window])
    return Match(start, end, (carriage + "\n").join(reindented) + carriage)


def reindent(new_lines: list[str], search_lines: list[str], file_lines: list[str]) -> list[str]:
    """Re-indent replacement lines from the search text's indentation style to the file's."""
    known = {_indent(s): _indent(f) for s, f in zip(search_lines, file_lines) if s.strip()}
    written = [line for line in search_lines + new_lines if line.strip()]
    base_width = min(_width(_indent(line)) for line in search_lines if line.strip())
    step = _indent_step([_width(_indent(line)) - base_width for line in written])
    base_indent = next(_indent(f) for s, f in zip(search_lines, file_lines) if s.strip() and _width(_indent(s)) == base_width)
    unit = _file_unit(file_lines, step)

    result = []
    for line in new_lines:
        indent = _indent(line)
        if not line.strip():
            result.append("")
        elif indent in known:
            result.append(known[indent] + line.lstrip())
        else:
            levels = round((_width(indent) - base_width) / step)
            result.append(_shift(base_indent, levels, unit) + line.lstrip())
    return result


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


def _width(indent: str) -> int:
    return len(indent.expandtabs(TAB_WIDTH))


def _indent_step(offsets: list[int]) -> int:
    step = 0
    for offset in offsets:
        step = math.gcd(step, abs(offset))
    return step or TAB_WIDTH


def _file_unit(file_lines: list[str], step: int) -> str:
    """Return one indentation level of the matched lines: a tab, or the smallest step of spaces."""
    indents = [_indent(line) for line in file_lines if line.strip() and _indent(line)]
    if any("\t" in indent for indent in indents):
        return "\t"
    return " " * _indent_step([len(indent) for indent in indents]) if indents else " " * step


def _shift(base: str, levels: int, unit: str) -> str:
    if levels >= 0:
        return base + unit * levels
    for _ in range(-levels):
        if not base.endswith(unit):
            return ""
        base = base[: -len(unit)]
    return base


METHODS: list[tuple[str, Method]] = [
    ("exact", match_exact),
    ("line endings", match_line_endings),
    ("indentation", match_indentation),
]


def visible(line: str) -> str:
    """Show a line's whitespace: tabs as →, trailing spaces as ·, a carriage return as ␍."""
    carriage = "␍" if line.endswith("\r") else ""
    line = line.rstrip("\r")
    body = line.rstrip(" ")
    return (body + "·" * (len(line) - len(body))).replace("\t", "→") + carriage


def _numbered(lines: list[str], first_number: int) -> str:
    return "\n".join(f"{first_number + index:4d}  {visible(line)}" for index, line in enumerate(lines))


def _ambiguous_message(text: str, matches: list[Match], shown: str) -> str:
    numbers = ", ".join(str(text.count("\n", 0, match.start) + 1) for match in matches[:MAX_SHOWN_LINES])
    return (
        f"search matches {len(matches)} places in {shown} (starting at lines {numbers}), so nothing was changed. "
        "Add the lines around the part to change so search matches one place only."
    )


def no_match_message(text: str, search: str, shown: str) -> str:
    """Explain a failed match: the closest lines of the file next to the search text, whitespace visible."""
    lines = text.split("\n")
    wanted = _block_lines(search)
    first, window = closest_window(lines, wanted)
    closest = _numbered(window, first + 1) if window and any(line.strip() for line in window) else "(the file is empty)"
    return (
        f"search was not found in {shown}, so nothing was changed. Whitespace is shown below as → for a tab, "
        f"· for a trailing space and ␍ for a carriage return.\nThe closest lines in the file:\n{closest}\n"
        f"Your search text:\n{_numbered(wanted[:MAX_SHOWN_LINES], 1)}\n"
        "Copy the lines exactly as read_file shows them (without the line numbers), or use write_file for the whole file."
    )


def closest_window(lines: list[str], wanted: list[str]) -> tuple[int, list[str]]:
    """Return the start index and lines of the file window most similar to `wanted`."""
    size = max(1, min(len(wanted), MAX_SHOWN_LINES))
    target = "\n".join(line.strip() for line in wanted[:size])
    best_start, best_ratio = 0, -1.0
    for start in range(max(1, min(len(lines), MAX_SCANNED_LINES) - size + 1)):
        matcher = difflib.SequenceMatcher(None, "\n".join(line.strip() for line in lines[start : start + size]), target, autojunk=False)
        if matcher.real_quick_ratio() > best_ratio and matcher.quick_ratio() > best_ratio and matcher.ratio() > best_ratio:
            best_start, best_ratio = start, matcher.ratio()
    return best_start, lines[best_start : best_start + size]
