"""Plain text and source code: UTF-8, kept exactly as written.

Newlines are not translated, so chunk offsets index the file's own decoded text.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from typing import BinaryIO

_SNIFF_BYTES = 8192
READ_BLOCK = 1 << 20


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


class TextStream:
    """The text of a UTF-8 file, decoded one block at a time (for ingest, whose memory
    must not grow with the file). Iterate once; `chars` counts what was decoded.

    Raises `UnreadableFile` as `load_text` does: NUL bytes in the first block, or an
    invalid byte (its offset counted from the start of the file).
    """

    def __init__(self, file: BinaryIO, block: int = READ_BLOCK) -> None:
        self._file = file
        self._block = block
        self.chars = 0

    def __iter__(self) -> Iterator[str]:
        decoder = codecs.getincrementaldecoder("utf-8-sig")()
        offset = 0
        while True:
            data = self._file.read(self._block)
            if offset == 0 and looks_binary(data):
                raise UnreadableFile("binary file (contains NUL bytes)")
            pending = len(decoder.getstate()[0])  # bytes of a character cut by the block
            try:
                text = decoder.decode(data, final=not data)
            except UnicodeDecodeError as exc:  # exc.start counts from the pending bytes
                where = offset - pending + exc.start
                raise UnreadableFile(f"not UTF-8 text (invalid byte at offset {where})") from None
            offset += len(data)
            if text:
                self.chars += len(text)
                yield text
            if not data:
                return
