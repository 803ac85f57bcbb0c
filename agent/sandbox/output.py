"""Command output: collected with a bounded memory footprint, cleaned for the model, cut to head and tail."""

from __future__ import annotations

import re
from pathlib import Path

# ANSI escape sequences: CSI (colours, cursor moves), OSC (titles, links), and two-byte escapes.
ANSI_PATTERN = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]")
# Control characters except \t and \n, including the C1 range a replacement decode can leave.
CONTROL_PATTERN = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\x80-\x9f]")


def clean_output(raw: bytes) -> str:
    """Decode bytes (invalid UTF-8 becomes U+FFFD) and strip escape sequences and control characters.

    A carriage return inside a line keeps only the text after it, as a terminal would show a progress bar.
    """
    text = raw.decode("utf-8", errors="replace")
    text = ANSI_PATTERN.sub("", text)
    text = text.replace("\r\n", "\n")
    if "\r" in text:
        text = "\n".join(line.rsplit("\r", 1)[-1] for line in text.split("\n"))
    return CONTROL_PATTERN.sub("", text)


def cut_middle(text: str, limit: int, total_bytes: int, log_path: str, gap: bool = False) -> str:
    """Keep the head and tail of `text` within `limit` characters, with a marker saying what was cut.

    Set `gap` when the text already lacks a middle part (the collector dropped it), so the marker is due anyway.
    """
    if len(text) <= limit and not gap:
        return text
    half = max(min(limit, len(text)) // 2, 1)
    where = f" Full log: {log_path} (read parts of it with grep, head, tail or sed -n)." if log_path else ""
    marker = f"\n[... output cut: {total_bytes} bytes in total, showing the first and last part.{where} ...]\n"
    return text[:half] + marker + text[-half:]


class OutputCollector:
    """Keeps the first and last bytes of a stream in memory and the whole stream, up to a cap, in a log file.

    The log file is created only when the output outgrows what memory keeps, so short commands write nothing.
    """

    def __init__(self, keep_bytes: int, log_limit: int, log_path: Path):
        self.keep_bytes = keep_bytes
        self.log_limit = log_limit
        self.log_path = log_path
        self.total = 0
        self._head = bytearray()
        self._tail = bytearray()
        self._log = None

    @property
    def over_log_limit(self) -> bool:
        return self.total > self.log_limit

    @property
    def logged(self) -> bool:
        return self._log is not None

    def add(self, chunk: bytes) -> None:
        if self._log is None and self.total + len(chunk) > 2 * self.keep_bytes:
            self._open_log()
        if self._log is not None and self.total < self.log_limit:
            self._log.write(chunk[: self.log_limit - self.total])
        self.total += len(chunk)
        room = self.keep_bytes - len(self._head)
        if room > 0:
            self._head += chunk[:room]
            chunk = chunk[room:]
        self._tail += chunk
        if len(self._tail) > self.keep_bytes:
            del self._tail[: len(self._tail) - self.keep_bytes]

    @property
    def has_gap(self) -> bool:
        return self.total > len(self._head) + len(self._tail)

    def raw(self) -> bytes:
        """Return the head and tail bytes; a gap between them is marked by cut_middle, not here."""
        return bytes(self._head + self._tail)

    def close(self) -> None:
        if self._log is not None:
            self._log.close()

    def _open_log(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("wb")
        # Everything so far is still in memory because the head and tail have not overlapped yet.
        self._log.write(bytes(self._head + self._tail))
