"""Splitting a document so that every prompt fits the model's context.

The split is the retriever's (`TokenChunker`: token windows with overlap, snapped back
to a paragraph, line or sentence end), sized in cl100k tokens; the model's own
tokenizer then has the last word: a piece whose prompt would not fit is split again,
smaller, until it does. Offsets stay offsets into the original document text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from agent.errors import UserError
from agent.retriever.chunking import Chunk, TokenChunker

DEFAULT_CHUNK_TOKENS = 512
_MIN_CHUNK_TOKENS = 16


@dataclass(frozen=True)
class Piece:
    """A part of a document: `text == document[start:end]`."""

    start: int
    end: int
    text: str


def split_document(
    text: str,
    *,
    chunk_tokens: int,
    overlap: int,
    room: int | None,
    count: Callable[[str], int] | None,
) -> list[Piece]:
    """`text` in pieces of about `chunk_tokens` cl100k tokens, each at most `room`
    tokens by `count` (the model's tokenizer); one piece when it all fits."""
    if room is not None and room < _MIN_CHUNK_TOKENS:
        raise UserError(
            f"the model's context leaves only {room} tokens for the document after the "
            "instructions and --max-tokens; lower --max-tokens"
        )
    whole = Piece(0, len(text), text)
    fits = count is None or room is None or count(text) <= room
    if fits and _cl100k(text) <= chunk_tokens:
        return [whole]
    return _split(whole, chunk_tokens, overlap, room, count)


def _cl100k(text: str) -> int:
    from agent.retriever.chunking import count_tokens

    return count_tokens(text)


def _split(
    piece: Piece,
    chunk_tokens: int,
    overlap: int,
    room: int | None,
    count: Callable[[str], int] | None,
) -> list[Piece]:
    size = max(chunk_tokens, _MIN_CHUNK_TOKENS)
    chunker = TokenChunker(size, min(overlap, size // 2))
    out: list[Piece] = []
    for chunk in chunker.split(piece.text):
        sub = _shifted(chunk, piece.start)
        if count is not None and room is not None and count(sub.text) > room:
            if size <= _MIN_CHUNK_TOKENS:
                raise UserError(
                    f"a part of the document does not fit in {room} tokens even when "
                    f"split to {size} tokens; lower --max-tokens"
                )
            out += _split(sub, size // 2, overlap // 2, room, count)
        else:
            out.append(sub)
    return out


def _shifted(chunk: Chunk, start: int) -> Piece:
    return Piece(start + chunk.start, start + chunk.end, chunk.text)
