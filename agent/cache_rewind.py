"""Taking drafted tokens back out of an mlx-lm prompt cache.

A pass that fed drafted tokens (`agent.prompt_lookup`) leaves them in the cache; the
ones the model did not take must go. A KV cache drops its last positions (`trim`). A
recurrent or convolution state (LFM2's short convolutions, `ArraysCache`) cannot be
rewound, so its state is kept before the pass (MLX arrays are immutable: keeping them is
free) and put back; the tokens taken since then are fed again with the next pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlx_lm.models.cache import can_trim_prompt_cache, trim_prompt_cache


@dataclass
class CacheMark:
    """A point in a prompt cache to come back to.

    `tokens` is the runtime's list of what the cache holds; `rewind` shortens it too,
    so the two always agree.
    """

    cache: list[Any]
    tokens: list[int]
    trimmable: bool = field(init=False)
    _length: int = field(init=False, default=-1)
    _states: list[Any] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        self.trimmable = can_trim_prompt_cache(self.cache)

    @property
    def set(self) -> bool:
        """Whether a mark is kept (only caches that cannot be trimmed need one)."""
        return self._length >= 0

    def mark(self) -> None:
        """Remember the cache as it is now (nothing to keep for a trimmable cache)."""
        if self.trimmable:
            return
        self._length = len(self.tokens)
        self._states = [None if c.is_trimmable() else _copy_state(c.state) for c in self.cache]

    def forget(self) -> None:
        """Everything fed since the mark is kept for good."""
        self._length = -1
        self._states = []

    def rewind(self, drop: int) -> list[int]:
        """Take the last `drop` fed tokens out; return the tokens before them that the
        cache also lost and must be fed again (always [] for a trimmable cache)."""
        if drop <= 0:
            return []
        if self.trimmable:
            trim_prompt_cache(self.cache, drop)
            del self.tokens[-drop:]
            return []
        if not self.set:
            raise RuntimeError("no mark to rewind to")
        fed = len(self.tokens) - self._length
        for cache, state in zip(self.cache, self._states, strict=True):
            if state is None:
                cache.trim(fed)
            else:
                cache.state = _copy_state(state)
        again = self.tokens[self._length : len(self.tokens) - drop]
        del self.tokens[self._length :]
        return again


def _copy_state(state: Any) -> Any:
    """A state with its own lists (a cache updates its list of arrays in place)."""
    if isinstance(state, (list, tuple)):
        return type(state)(_copy_state(item) for item in state)
    return state
