"""Plain text and source code: UTF-8, kept exactly as written.

Newlines are not translated, so chunk offsets index the file's own decoded text.
"""

from __future__ import annotations

_SNIFF_BYTES = 8192


class UnreadableFile(Exception):
    """A file ingest cannot turn into text; the message says why."""


def looks_binary(data: bytes) -> bool:
    """NUL bytes near the start: images, archives, executables, UTF-16 text."""
    return b"\x00" in data[:_SNIFF_BYTES]


def load_text(data: bytes) -> str:
    if looks_binary(data):
        raise UnreadableFile("binary file (contains NUL bytes)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnreadableFile(f"not UTF-8 text (invalid byte at offset {exc.start})") from None
