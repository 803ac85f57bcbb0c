"""Decode workspace files as text in their own encoding, and encode them back the same way."""

from __future__ import annotations

import codecs
from dataclasses import dataclass

from agent.tool import ToolError

# Only the start of a file is inspected to tell text from binary data.
SNIFF_BYTES = 8192
# A text file has few control characters; above this share of the sniffed bytes it is binary.
MAX_CONTROL_SHARE = 0.05
TEXT_CONTROLS = frozenset(b"\t\n\r\f\b\x1b")

# Longer byte-order marks first: the UTF-32 LE mark starts with the UTF-16 LE one.
BYTE_ORDER_MARKS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

MAGIC_NUMBERS = (
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"\x7fELF", "an executable"),
    (b"SQLite format 3", "an SQLite database"),
)


@dataclass
class TextFile:
    """A file's text with the encoding and byte-order mark it was stored in."""

    text: str
    encoding: str = "utf-8"
    bom: bytes = b""

    def encode(self, text: str, shown: str) -> bytes:
        """Return `text` as bytes in this file's encoding, or raise ToolError naming a character it cannot store."""
        try:
            return self.bom + text.encode(self.encoding)
        except UnicodeEncodeError as error:
            character = error.object[error.start]
            raise ToolError(
                f"{shown} is stored as {self.encoding}, which cannot hold the character {character!r}. "
                "Use only characters that encoding supports, or rewrite the file with write_file to store it as UTF-8."
            ) from None


def decode(raw: bytes, shown: str) -> TextFile:
    """Decode a file's bytes: byte-order mark first, then UTF-8, then Latin-1. Binary data raises ToolError."""
    for bom, encoding in BYTE_ORDER_MARKS:
        if raw.startswith(bom):
            try:
                return TextFile(raw[len(bom):].decode(encoding), encoding, bom)
            except UnicodeDecodeError:
                break
    kind = binary_kind(raw)
    if kind:
        raise ToolError(f"{shown} is a binary file ({kind}), not text, so it cannot be read or edited as text.")
    try:
        return TextFile(raw.decode("utf-8"), "utf-8")
    except UnicodeDecodeError:
        # Latin-1 maps every byte, so a legacy 8-bit file still reads and writes back unchanged.
        return TextFile(raw.decode("latin-1"), "latin-1")


def binary_kind(raw: bytes) -> str:
    """Return what kind of binary data `raw` looks like, or "" when it looks like text."""
    for magic, kind in MAGIC_NUMBERS:
        if raw.startswith(magic):
            return kind
    head = raw[:SNIFF_BYTES]
    if b"\0" in head:
        return "unknown binary data"
    controls = sum(1 for byte in head if byte < 0x20 and byte not in TEXT_CONTROLS)
    if head and controls / len(head) > MAX_CONTROL_SHARE:
        return "unknown binary data"
    return ""
