"""The regex engine's compiled grammar: an outlines-core automaton with distances.

This is the fallback engine (llguidance is the default): it covers schema keywords that
llguidance refuses (`not`, `uniqueItems`, dependencies, `if/then/else`, ...) and knows
the exact number of tokens still needed from every state, so its masks filter out tokens
that could not finish within the remaining budget.

Per state the grammar caches the allowed tokens as a packed mask in the process-wide
`masks.MASK_CACHE` (one byte budget for all grammars); when the remaining budget is small
it filters them to tokens whose next state can still finish in time.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from agent.constrained import masks
from agent.constrained.engine import EngineName
from agent.constrained.vocabulary import GrammarVocabulary
from schemas.automaton import Automaton

_MAX_FORCED_BYTES = 4096
_INF = 1 << 30
_IDS = itertools.count()  # distinguishes grammars in the shared mask cache


@dataclass(frozen=True)
class Forced:
    """The tokens a state forces, where they lead, and whether the output then ends."""

    tokens: tuple[int, ...]
    end_state: int
    ends: bool


class CompiledGrammar:
    """An automaton bound to a vocabulary, with per-state caches for decoding."""

    engine: EngineName = "regex"

    def __init__(self, automaton: Automaton, vocab: GrammarVocabulary, regex: str) -> None:
        self.automaton = automaton
        self.index = automaton.index
        self.vocab = vocab
        self.regex = regex
        self.distance = automaton.distance
        self.complete = automaton.complete_states
        self.max_distance = automaton.max_distance()
        # The fast path (all allowed tokens, no filtering) is safe when every state a
        # token can reach has a known distance.
        self._fast_path_ok = automaton.exact or vocab.byte_complete
        self._eos = np.asarray(vocab.eos_ids, dtype=np.int64)
        self._ranked: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._bytes: dict[int, list[tuple[int, int]]] = {}
        self._forced: dict[int, Forced] = {}
        self._id = next(_IDS)

    @property
    def end_ids(self) -> tuple[int, ...]:
        return self.vocab.eos_ids

    @property
    def initial_state(self) -> int:
        return self.automaton.initial_state

    def start(self):  # -> GrammarConstraint (imported lazily: it imports this module)
        from agent.constrained.constraint import GrammarConstraint

        return GrammarConstraint(self)

    def min_tokens(self, state: int | None = None) -> int:
        """Tokens (with end-of-sequence) needed from `state` to a complete output."""
        return self.distance.get(self.initial_state if state is None else state, _INF)

    # ------------------------------------------------------------- transitions
    def next_state(self, state: int, token: int) -> int | None:
        if token in self.vocab.eos_ids:
            return self.index.get_next_state(state, self.vocab.end_id)
        return self.index.get_next_state(state, token)

    def is_final(self, state: int) -> bool:
        return self.index.is_final_state(state)

    # -------------------------------------------------------------------- masks
    def allowed(self, state: int, budget: int) -> np.ndarray:
        """Token ids allowed in `state` from which the output can end within `budget`."""
        if self._fast_path_ok and budget >= 1 + self.max_distance:
            return self._all_allowed(state)
        ids, dists = self.ranked_tokens(state)
        cut = int(np.searchsorted(dists, budget - 1, side="right"))
        parts = [ids[:cut]]
        if state in self.complete and budget >= 1:
            parts.append(self._eos)
        allowed = np.concatenate(parts)
        if not len(allowed):
            raise RuntimeError(f"no token can finish within {budget} tokens")  # unreachable
        return allowed

    def packed_mask(self, state: int, budget: int) -> np.ndarray:
        """`allowed` as packed bits; cached (in the shared budget) when the budget is not
        binding, which is every step but the last few of a generation."""
        fast = self._fast_path_ok and budget >= 1 + self.max_distance
        key = (self._id, state)
        if fast:
            cached = masks.MASK_CACHE.get(key)
            if cached is not None:
                return cached
        words = masks.pack(self.allowed(state, budget), self.vocab.size)
        if fast:
            masks.MASK_CACHE.put(key, words)
        return words

    def _all_allowed(self, state: int) -> np.ndarray:
        end = self.vocab.end_id
        ids = np.asarray(
            [t for t in self.index.get_allowed_tokens(state) if t < end], dtype=np.int64
        )
        if state in self.complete:
            ids = np.concatenate([ids, self._eos])
        return ids

    def ranked_tokens(self, state: int) -> tuple[np.ndarray, np.ndarray]:
        """Allowed non-end tokens sorted by the distance of their next state."""
        cached = self._ranked.get(state)
        if cached is not None:
            return cached
        end = self.vocab.end_id
        ids, dists = [], []
        for token in self.index.get_allowed_tokens(state):
            if token >= end:
                continue
            target = self.index.get_next_state(state, token)
            d = self.distance.get(target, _INF) if target is not None else _INF
            if d < _INF:
                ids.append(token)
                dists.append(d)
        order = np.argsort(np.asarray(dists, dtype=np.int64), kind="stable")
        ranked = (
            np.asarray(ids, dtype=np.int32)[order],
            np.asarray(dists, dtype=np.int64)[order],
        )
        self._ranked[state] = ranked
        return ranked

    # ------------------------------------------------------------------ forcing
    def _byte_successors(self, state: int) -> list[tuple[int, int]]:
        cached = self._bytes.get(state)
        if cached is None:
            cached = []
            for byte, token in enumerate(self.vocab.byte_ids):
                if token is None:
                    continue
                target = self.index.get_next_state(state, token)
                if target is not None:
                    cached.append((byte, target))
            self._bytes[state] = cached
        return cached

    def forced(self, state: int) -> Forced:
        """The continuation the grammar leaves no choice about, tokenised greedily."""
        cached = self._forced.get(state)
        if cached is not None:
            return cached
        text = bytearray()
        current = state
        while current not in self.complete and len(text) < _MAX_FORCED_BYTES:
            successors = self._byte_successors(current)
            if len(successors) != 1:
                break
            byte, current = successors[0]
            text.append(byte)
        ends = current in self.complete and not self._byte_successors(current)
        tokens, reached = self._tokenize_from(state, bytes(text))
        if reached != current:
            ends = False
        forced = Forced(tuple(tokens), reached, ends)
        self._forced[state] = forced
        return forced

    def _tokenize_from(self, state: int, text: bytes) -> tuple[list[int], int]:
        """Greedy longest-match tokens of `text` that the automaton accepts from `state`."""
        tokens: list[int] = []
        pos = 0
        longest = self.vocab.max_token_length
        while pos < len(text):
            for length in range(min(longest, len(text) - pos), 0, -1):
                token = self.vocab.lookup.get(text[pos : pos + length])
                if token is None:
                    continue
                target = self.index.get_next_state(state, token)
                if target is not None:
                    tokens.append(token)
                    state = target
                    pos += length
                    break
            else:
                break  # no single token fits (vocabulary without that byte)
        return tokens, state
