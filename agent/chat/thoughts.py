"""Find the thought channel and stray control markup in a reply, to keep them out of its visible text.

Gemma 4 thinks in `<|channel>thought\n...<channel|>` blocks. A thought can also leak: its opening
marker lost (a server dropped it, or the prompt opened the channel) so only `<channel|>` remains, or
its closing marker missing. Thoughts are outside_thoughts for the trajectory but never parsed for calls or shown.
"""

from __future__ import annotations

import re

from agent.chat import gemma4, json_calls

CHANNEL_START = "<|channel>"
CHANNEL_END = gemma4.THOUGHT_END
_CHANNEL_NAME = re.compile(r"^thought[ \t]*\n?")
_CALL_STARTS = (gemma4.CALL_START, json_calls.CALL_START)

# Results the model writes itself are invented, and the markers below never belong in visible text.
_INVENTED_RESPONSES = re.compile(
    re.escape(gemma4.RESPONSE_START) + r".*?(?:" + re.escape(gemma4.RESPONSE_END) + r"|$)"
    + "|" + re.escape(json_calls.RESPONSE_START) + r".*?(?:" + re.escape(json_calls.RESPONSE_END) + r"|$)",
    re.DOTALL,
)
_STRAY_MARKERS = re.compile(
    r"<\|turn>\w*\n?|<turn\|>|<\|think\|>|<\|channel>|<channel\|>|<bos>|<eos>"
    r"|<start_of_turn>\w*\n?|<end_of_turn>|<\|im_start\|>\w*\n?|<\|im_end\|>"
    r"|<tool_call\|>|</tool_call>|<\|tool>|<tool\|>"
)


def leaked_thought_end(text: str) -> int:
    """Return where a leaked thought ends: just after a `<channel|>` that comes before any opening
    marker or call, or 0 when the reply does not start with a leaked thought."""
    close = text.find(CHANNEL_END)
    if close < 0:
        return 0
    openers = [found for marker in (CHANNEL_START, *_CALL_STARTS) if (found := text.find(marker, 0, close)) >= 0]
    return 0 if openers else close + len(CHANNEL_END)


def thought_end(text: str, inner: int, truncated: bool) -> tuple[int, int]:
    """Return where the thought that starts at `inner` ends and where the text after it begins.

    In a whole reply an unclosed thought ends where a call begins: the model forgot `<channel|>`
    and went on to act. In a reply cut at the token limit it runs to the end, since a call in it may
    be a draft the model had not finished thinking about.
    """
    close = text.find(CHANNEL_END, inner)
    if close >= 0:
        return close, close + len(CHANNEL_END)
    if truncated:
        return len(text), len(text)
    calls = [found for marker in _CALL_STARTS if (found := text.find(marker, inner)) >= 0]
    end = min(calls, default=len(text))
    return end, end


def thought_text(raw: str) -> str:
    """Return the text of one thought without its channel name."""
    return _CHANNEL_NAME.sub("", raw.strip(), count=1).strip()


def clean_content(text: str) -> str:
    """Return the visible text: invented tool results and stray control markers removed."""
    text = _INVENTED_RESPONSES.sub("", text)
    text = _STRAY_MARKERS.sub("", text)
    return text.replace(gemma4.STRING, '"').strip()
