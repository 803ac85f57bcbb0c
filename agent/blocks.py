"""Taking a file's content from a reply written as a Markdown code block.

Small models write whole files far better as a fenced code block, their usual chat form, than as
a JSON string full of escapes. The file's path never comes from the block: the model named it in a
write_file call first, so no file is ever written under a name guessed from prose.
"""

from __future__ import annotations

import json
import re

_THOUGHT = re.compile(r"<\|channel>.*?(<channel\|>|$)", re.DOTALL)
_FENCE = re.compile(r"^(`{3,}|~{3,})[^\n`]*\n(.*?)^\1[ \t]*$", re.DOTALL | re.MULTILINE)
_OPEN_FENCE = re.compile(r"^(`{3,}|~{3,})[^\n`]*\n", re.MULTILINE)


def extract_file_content(reply: str) -> str | None:
    """Return the file content a reply holds: its longest fenced block, else the whole reply.

    Returns None when there is nothing to write (no text, or only empty code blocks), or when a fence
    was opened but never closed (a reply cut off at the token limit), so that no half file is written.
    """
    reply = _THOUGHT.sub("", reply)
    blocks = [match.group(2) for match in _FENCE.finditer(reply)]
    if any(block.strip() for block in blocks):
        return max(blocks, key=len)
    if blocks or _OPEN_FENCE.search(reply):
        return None
    text = reply.strip("\n")
    return text + "\n" if text.strip() else None


def has_unclosed_fence(reply: str) -> bool:
    """Tell whether a reply opens a code block that it never closes."""
    return bool(_OPEN_FENCE.search(_FENCE.sub("", _THOUGHT.sub("", reply))))


def is_call_text(content: str) -> bool:
    """Tell whether a block contains a tool call written as JSON ({"name": ..., "arguments": {...}}), not a file."""
    text = re.sub(r"^\s*<tool_call>|</tool_call>\s*$", "", content.strip())
    try:
        value = json.loads(text)
    except ValueError:
        return False
    return isinstance(value, dict) and isinstance(value.get("name"), str) and isinstance(value.get("arguments"), dict)
