"""Prompt caches of a few recent conversations, for a model that serves several at once.

A `Model` computes with one prompt cache: the tokens of the last prompt and output. An
agent loop in one process extends that cache step after step; a server does not, since
its requests alternate between conversations, and each switch would prefill the whole
conversation again. `PromptCachePool` keeps the caches a switch displaces (at most
`max_entries` of them and `max_bytes` of arrays, the least recently used dropped first)
and hands one back when a prompt extends what it holds.

Reuse follows mlx-lm's server (`LRUPromptCache` in `mlx_lm.models.cache`):

* a saved cache serves a prompt that extends its exact text (or its tokens). LFM2's
  short-convolution state cannot be rewound, so for LFM2 that is the only reuse;
* a cache that can be trimmed (attention only, such as SmolLM2's) also serves a prompt
  that shares a prefix with it: a copy is trimmed to the common prefix, the saved
  cache stays as it is.

Caches move in and out, never shared: a generation writes into the cache it runs on,
so a state is either the model's active one or in the pool, not both.
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

DEFAULT_MAX_ENTRIES = 4
DEFAULT_MAX_BYTES = 1 << 30


class CacheState(Protocol):
    """What the pool needs of a saved state (`agent.runtime`'s cache state)."""

    cache: list[Any] | None  # mlx-lm cache objects, one per layer
    tokens: list[int]  # the tokens the cache holds
    history_text: str | None  # the text of prompt + output, when known


S = TypeVar("S", bound=CacheState)


@dataclass(frozen=True)
class PoolStats:
    """What the pool holds and how often it served a prompt."""

    entries: int
    bytes: int
    max_entries: int
    max_bytes: int
    hits: int  # a saved cache was extended
    trimmed: int  # a copy of a saved cache was trimmed to a shared prefix
    misses: int  # nothing saved fitted: the prompt was prefilled from scratch
    evictions: int


@dataclass
class _Entry(Generic[S]):
    state: S
    nbytes: int


class PromptCachePool(Generic[S]):
    """Saved prompt caches, least recently used first out (see the module docstring)."""

    def __init__(
        self, max_entries: int = DEFAULT_MAX_ENTRIES, max_bytes: int = DEFAULT_MAX_BYTES
    ) -> None:
        if max_entries < 0 or max_bytes < 0:
            raise ValueError("max_entries and max_bytes must be >= 0")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: OrderedDict[int, _Entry[S]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._hits = self._trimmed = self._misses = self._evictions = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def stats(self) -> PoolStats:
        with self._lock:
            return PoolStats(
                len(self._entries), self._bytes, self.max_entries, self.max_bytes,
                self._hits, self._trimmed, self._misses, self._evictions,
            )  # fmt: skip

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def exchange(
        self,
        active: S,
        fresh: Callable[[], S],
        *,
        text: str | None = None,
        tokens: Sequence[int] | None = None,
    ) -> S:
        """The state to run a prompt (its `text`, or its `tokens`) on.

        `active` is kept when the prompt extends it. Otherwise it is saved here and the
        longest saved state the prompt extends is taken out; failing that, a trimmed
        copy of the saved state sharing the longest prefix, or `fresh()`.
        """
        if (text is None) == (tokens is None):
            raise ValueError("give the prompt's text or its tokens")
        with self._lock:
            best = max(
                (k for k, e in self._entries.items() if _extends(e.state, text, tokens)),
                key=lambda k: len(self._entries[k].state.tokens),
                default=None,
            )
            if _extends(active, text, tokens) and (
                best is None or len(active.tokens) >= len(self._entries[best].state.tokens)
            ):
                return active
            if best is not None:
                entry = self._entries.pop(best)
                self._bytes -= entry.nbytes
                self._hits += 1
                self._save(active)
                return entry.state
            self._save(active)
            donor = self._trim_donor(text, tokens)
            if donor is not None:
                self._trimmed += 1
                return copy.deepcopy(donor)  # the caller trims it; the saved one stays
            self._misses += 1
            return fresh()

    # ------------------------------------------------------------------ helpers
    def _save(self, state: S) -> None:
        if not state.cache or not state.tokens:
            return
        nbytes = sum(int(c.nbytes) for c in state.cache)
        self._entries[id(state)] = _Entry(state, nbytes)
        self._bytes += nbytes
        while self._entries and (
            len(self._entries) > self.max_entries or self._bytes > self.max_bytes
        ):
            _, dropped = self._entries.popitem(last=False)
            self._bytes -= dropped.nbytes
            self._evictions += 1

    def _trim_donor(self, text: str | None, tokens: Sequence[int] | None) -> S | None:
        """The trimmable saved state sharing the longest prefix with the prompt."""
        best, best_len = None, 0
        for entry in self._entries.values():
            state = entry.state
            if not all(c.is_trimmable() for c in state.cache or ()):
                continue
            if text is not None:
                shared = _shared_prefix(state.history_text or "", text)
            else:
                assert tokens is not None
                shared = _shared_prefix(state.tokens, tokens)
            if shared > best_len:
                best, best_len = state, shared
        return best


def _extends(state: CacheState, text: str | None, tokens: Sequence[int] | None) -> bool:
    """Whether a prompt is the state's exact history plus something."""
    if not state.cache or not state.tokens:
        return False
    if text is not None:
        done = state.history_text
        return done is not None and len(text) > len(done) and text.startswith(done)
    assert tokens is not None
    n = len(state.tokens)
    return len(tokens) > n and list(tokens[:n]) == state.tokens


def _shared_prefix(a: Sequence[Any], b: Sequence[Any]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n
