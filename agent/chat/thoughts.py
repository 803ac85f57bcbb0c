"""Separate the thought channel and stray control markup from a reply's visible text.

Gemma 4 thinks in `<|channel>thought\n...<channel|>` blocks. A thought can also leak: its opening
marker lost (a server dropped it, or the prompt opened the channel) so only `<channel|>` remains, or
its closing marker missing. Thoughts are kept for the trajectory but never parsed for calls or shown.
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


def split_thoughts(text: str, truncated: bool = False) -> tuple[str, str]:
    """Return (thought text, the reply without its thought blocks).

    In a reply cut at the token limit an unclosed thought runs to the end, since any call in it may
    be a draft the model had not finished thinking about.
    """
    thoughts: list[str] = []
    first_end, first_start = text.find(CHANNEL_END), text.find(CHANNEL_START)
    if first_end >= 0 and (first_start < 0 or first_end < first_start):
        thoughts.append(_thought_text(text[:first_end]))
        text = text[first_end + len(CHANNEL_END):]

    kept: list[str] = []
    position = 0
    while (start := text.find(CHANNEL_START, position)) >= 0:
        kept.append(text[position:start])
        inner = start + len(CHANNEL_START)
        end, position = _thought_end(text, inner, truncated)
        thoughts.append(_thought_text(text[inner:end]))
    kept.append(text[position:])
    return "\n".join(t for t in thoughts if t), "".join(kept)


def _thought_end(text: str, inner: int, truncated: bool) -> tuple[int, int]:
    """Return where the thought that starts at `inner` ends and where the text after it begins.

    In a whole reply an unclosed thought ends where a call begins: the model forgot `<channel|>`
    and went on to act.
    """
    close = text.find(CHANNEL_END, inner)
    if close >= 0:
        return close, close + len(CHANNEL_END)
    if truncated:
        return len(text), len(text)
    calls = [found for marker in _CALL_STARTS if (found := text.find(marker, inner)) >= 0]
    end = min(calls, default=len(text))
    return end, end


def _thought_text(raw: str) -> str:
    return _CHANNEL_NAME.sub("", raw.strip(), count=1).strip()


def clean_content(text: str) -> str:
    """Return the visible text: invented tool results and stray control markers removed."""
    text = _INVENTED_RESPONSES.sub("", text)
    text = _STRAY_MARKERS.sub("", text)
    return text.replace(gemma4.STRING, '"').strip()
