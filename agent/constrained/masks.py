"""Token masks as packed bits, expanded with plain MLX operations on any backend.

Both grammar engines describe the allowed tokens as a bitmask (bit i of 32-bit word
i // 32 is token i), the format llguidance writes. The decode loop needs a boolean
vector the width of the logits; expanding the words with a shift and an `and` is a few
fused MLX ops, so it runs on CPU, CUDA and Metal alike (Outlines' own MLX path uses a
Metal kernel and fails elsewhere).

Packed masks are 32x smaller than boolean ones (12.5 KB at a 100k vocabulary), and the
ones the regex engine caches per automaton state share one byte budget for the whole
process, so memory stays bounded however many grammars are alive.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Iterable

import mlx.core as mx
import numpy as np

DEFAULT_CACHE_BYTES = 128 * 2**20

_SHIFTS = mx.array(np.arange(32, dtype=np.uint32))  # materialised: usable from any thread


def words_for(width: int) -> int:
    return (width + 31) // 32


def pack(ids: Iterable[int] | np.ndarray, size: int) -> np.ndarray:
    """A packed mask (int32 words) with the bits of `ids` set."""
    bits = np.zeros(words_for(size) * 32, dtype=np.bool_)
    bits[np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids, dtype=np.int64)] = True
    return np.packbits(bits, bitorder="little").view(np.int32)


def unpack_ids(words: np.ndarray) -> np.ndarray:
    """The token ids whose bits are set (for tests and diagnostics)."""
    return np.flatnonzero(np.unpackbits(words.view(np.uint8), bitorder="little"))


def expand(words: np.ndarray | mx.array, width: int) -> mx.array:
    """A boolean (width,) mask from packed words; ids past the words are disallowed."""
    packed = mx.array(words.view(np.uint32)) if isinstance(words, np.ndarray) else words
    bits = ((packed[:, None] >> _SHIFTS[None, :]) & 1).reshape(-1)
    n = bits.shape[0]
    if n >= width:
        return bits[:width].astype(mx.bool_)
    return mx.concatenate([bits, mx.zeros((width - n,), dtype=bits.dtype)]).astype(mx.bool_)


def apply(logits: mx.array, mask: mx.array) -> mx.array:
    """Logits with every disallowed token at -inf (one vectorised select)."""
    return mx.where(mask, logits, -mx.inf)


class PackedMaskCache:
    """Least-recently-used packed masks under one byte budget shared by all grammars."""

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[Hashable, np.ndarray] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def nbytes(self) -> int:
        return self._bytes

    def get(self, key: Hashable) -> np.ndarray | None:
        with self._lock:
            words = self._entries.get(key)
            if words is not None:
                self._entries.move_to_end(key)
            return words

    def put(self, key: Hashable, words: np.ndarray) -> None:
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old.nbytes
            self._entries[key] = words
            self._bytes += words.nbytes
            while self._bytes > self.max_bytes and len(self._entries) > 1:
                _, dropped = self._entries.popitem(last=False)
                self._bytes -= dropped.nbytes

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0


MASK_CACHE = PackedMaskCache()
