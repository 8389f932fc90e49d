"""A guard against loops inside constrained values: the token that would repeat a cycle
a fourth time is refused.

A small model stuck in a loop inside a value (`"employees_employees_employees_..."`,
`[0.7,0.7,0.7,...]`, `[13,14,...,19,13,14,...]`) writes until the budget runs out, and
the grammar then closes the value into a valid but wrong call. This wraps a step's
constraint and watches the run of tokens the model sampled since the grammar last
forced any (a run is a value, or the free text between calls): when its tail is the
same block of 1 to `max_period` tokens `repeats` times over, the block's first token is
refused once, so the model must leave the cycle (close the value, or write something
else). Forced tokens are never touched, and the token is only refused when another one
is allowed, so every guarantee of the inner constraint (validity, budget) stands.

It is `StepRequest(loop_guard=True)`; off by default (see BENCHMARKS.md, "Function
calling (BFCL)", for what it did to accuracy).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from agent.constrained import masks

MAX_PERIOD = 8
REPEATS = 3


def cycle_next(run: list[int], max_period: int = MAX_PERIOD, repeats: int = REPEATS) -> int | None:
    """The token that would continue a cycle ending `run`, or None.

    The shortest block wins: `[5, 5, 5]` is the block `[5]`, not `[5, 5, 5]` once.
    """
    for period in range(1, max_period + 1):
        span = period * repeats
        if len(run) < span:
            return None
        block = run[-period:]
        if all(run[-span + i] == block[i % period] for i in range(span)):
            return block[0]
    return None


class LoopGuard:
    """Wraps a `DecodeConstraint` (see the module docstring)."""

    def __init__(self, inner: Any, max_period: int = MAX_PERIOD, repeats: int = REPEATS) -> None:
        self.inner = inner
        self.max_period = max_period
        self.repeats = repeats
        self.run: list[int] = []  # tokens sampled since the last forced run
        self.refused = 0  # how many times a cycle was cut

    def _banned(self) -> int | None:
        return cycle_next(self.run, self.max_period, self.repeats)

    def forced(self, budget: int) -> list[int]:
        tokens = self.inner.forced(budget)
        if tokens:
            self.run = []
        return tokens

    def packed_mask(self, budget: int) -> np.ndarray:
        words = self.inner.packed_mask(budget)
        banned = self._banned()
        if banned is None or not masks.allowed(words, banned):
            return words
        cut = words.copy()
        cut[banned >> 5] &= np.uint32(~(1 << (banned & 31)) & 0xFFFFFFFF)
        if not cut.any():  # the only way on: the guarantee wins
            return words
        self.refused += 1
        return cut

    def logit_bias(self, budget: int, width: int) -> Any:
        if self._banned() is None:
            return self.inner.logit_bias(budget, width)
        return masks.bias(self.packed_mask(budget), width)

    def check(self, token: int, budget: int) -> bool:
        banned = self._banned()
        if banned is not None and token == banned:
            words = self.inner.packed_mask(budget)
            others = words.copy()
            others[banned >> 5] &= np.uint32(~(1 << (banned & 31)) & 0xFFFFFFFF)
            if others.any():
                return False
        return bool(self.inner.check(token, budget))

    def fallback(self, budget: int) -> int:
        return int(self.inner.fallback(budget))

    def advance(self, token: int) -> None:
        self.inner.advance(token)
        self.run.append(token)

    def is_finished(self) -> bool:
        return bool(self.inner.is_finished())

    def __getattr__(self, name: str) -> Any:  # state, calls, ... of the inner constraint
        return getattr(self.inner, name)
