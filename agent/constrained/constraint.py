"""One generation's position in a regex-engine grammar (a `Constraint`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from agent.constrained import masks
from agent.constrained.grammar import CompiledGrammar


class GrammarConstraint:
    """Tracks the automaton state and answers the decode loop's questions.

    Invariant: the tokens still needed to finish from the current state never exceed
    the remaining budget. It holds at the start (checked before generating) and every
    allowed or forced token preserves it, so the output always completes in budget. The
    mask is exact here, so a sampled token never needs a second look (`check`).
    """

    def __init__(self, grammar: CompiledGrammar) -> None:
        self.grammar = grammar
        self.state = grammar.initial_state
        self._finished = False
        self._eos = grammar.vocab.eos_ids[0]
        self._words: np.ndarray | None = None  # the mask of the current state

    def forced(self, budget: int) -> list[int]:
        forced = self.grammar.forced(self.state)
        tokens = [*forced.tokens, self._eos] if forced.ends else list(forced.tokens)
        needed = (
            len(tokens) if forced.ends else len(tokens) + self.grammar.min_tokens(forced.end_state)
        )
        if not tokens or needed > budget:
            return []
        for token in tokens:
            self.advance(token)
        return tokens

    def packed_mask(self, budget: int) -> np.ndarray:
        self._words = self.grammar.packed_mask(self.state, budget)
        return self._words

    def logit_bias(self, budget: int, width: int) -> Any:
        return masks.bias(self.packed_mask(budget), width)

    def check(self, token: int, budget: int) -> bool:
        words = self._words if self._words is not None else self.packed_mask(budget)
        return masks.allowed(words, token)

    def fallback(self, budget: int) -> int:
        if self.state in self.grammar.complete:
            return self._eos
        ids, _ = self.grammar.ranked_tokens(self.state)
        return int(ids[0])

    def advance(self, token_id: int) -> None:
        if self._finished:
            raise RuntimeError("the grammar already finished")
        target = self.grammar.next_state(self.state, token_id)
        if target is None:
            raise RuntimeError(f"token {token_id} is not allowed by the grammar here")
        self.state = target
        self._words = None
        if token_id in self.grammar.vocab.eos_ids:
            self._finished = True

    def is_finished(self) -> bool:
        return self._finished
