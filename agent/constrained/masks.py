"""Token masks as packed bits, turned into an additive logit bias that works on any backend.

Both grammar engines describe the allowed tokens as a bitmask (bit i of 32-bit word
i // 32 is token i), the format llguidance writes. The decode loop adds a float bias
(0 allowed, -1e30 not) and clamps from below at the smallest logit minus a margin
(`agent.runtime.apply_logit_bias`):
two cheap element-wise ops, so it runs on CPU, CUDA and Metal alike (Outlines' own MLX
path uses a Metal kernel and fails elsewhere). Measured on MLX's CPU backend, `mx.where`
over 100k logits costs ~6x an add, and -inf (or -1e30) left in the logits makes the
sampler's `exp` several times slower; the clamp keeps every masked logit far below the
allowed ones but finite. Masked tokens thus keep a probability of about e^-30 relative
to the smallest allowed one: never the greedy choice, and every sampled token is checked
against the bitmask before it is taken (`allowed`), so none can slip through.

The bits are unpacked with numpy on the CPU while the model's forward pass runs
(`mx.async_eval`), so the expansion costs no model time.

Packed masks are 32x smaller than boolean ones (12.5 KB at a 100k vocabulary), and the
ones the regex engine caches per automaton state share one byte budget for the whole
process, so memory stays bounded however many grammars are alive.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Iterable
from typing import Any

import numpy as np

DEFAULT_CACHE_BYTES = 128 * 2**20
MASKED = -1e30  # clamped by the decode loop (`agent.runtime.apply_logit_bias`)

_BIAS = np.array([MASKED, 0.0], dtype=np.float32)


def words_for(width: int) -> int:
    return (width + 31) // 32


def pack(ids: Iterable[int] | np.ndarray, size: int) -> np.ndarray:
    """A packed mask (uint32 words) with the bits of `ids` set."""
    bits = np.zeros(words_for(size) * 32, dtype=np.bool_)
    bits[np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids, dtype=np.int64)] = True
    return np.packbits(bits, bitorder="little").view(np.uint32)


def unpack_ids(words: np.ndarray) -> np.ndarray:
    """The token ids whose bits are set (for tests and diagnostics)."""
    return np.flatnonzero(np.unpackbits(words.view(np.uint8), bitorder="little"))


_BIAS_CACHE_SIZE = 16  # MLX biases kept (at a 100k vocabulary, 400 KB each)
_bias_cache: OrderedDict[tuple[bytes, int], Any] = OrderedDict()
_bias_lock = threading.Lock()


def bias(words: np.ndarray, width: int) -> Any:
    """The additive logit bias (float32, `width`) of a packed mask, as an MLX array.

    Consecutive steps often share a mask (every token inside a free string, every digit
    of a number), so the last few biases are kept: a hit costs a dictionary lookup
    instead of unpacking 100k bits and copying 400 KB into a new array.
    """
    key = (words.tobytes(), width)
    with _bias_lock:
        cached = _bias_cache.get(key)
        if cached is not None:
            _bias_cache.move_to_end(key)
            return cached
    import mlx.core as mx

    bits = np.unpackbits(words.view(np.uint8), bitorder="little")
    if bits.shape[0] < width:
        bits = np.concatenate([bits, np.zeros(width - bits.shape[0], dtype=np.uint8)])
    array = mx.array(_BIAS[bits[:width]])
    mx.eval(array)  # never left lazy: it is shared across steps and threads
    with _bias_lock:
        _bias_cache[key] = array
        while len(_bias_cache) > _BIAS_CACHE_SIZE:
            _bias_cache.popitem(last=False)
    return array


def allowed(words: np.ndarray, token: int) -> bool:
    """Whether `token`'s bit is set."""
    return token >> 5 < words.shape[0] and bool((int(words[token >> 5]) >> (token & 31)) & 1)


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
