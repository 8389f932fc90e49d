"""The one interface in front of both grammar engines.

A `Grammar` is compiled once (per output type, tokenizer and end token) and may be used
by many generations; `Grammar.start()` gives a `Constraint`, one generation's position
in it, which is what the decode loop drives (the runtime's `DecodeConstraint`). Nothing
above this layer knows which engine is behind a grammar; it shows only in `engine`.

The budget contract every constraint keeps: from the start, a complete output needs at
most `min_tokens()` tokens (the end token included), and every mask, forced run and
accepted token keeps "what is still needed fits in what is left". So an output never
stops half-way at `max_tokens`: it completes, or the call is refused before it starts.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

import numpy as np

# "llguidance": llguidance compiled the request; "regex+llguidance": the project's regex
# compiler turned the schema into a regex that llguidance masks; "regex": that regex as
# an outlines-core automaton (exact token counts).
EngineName = Literal["llguidance", "regex+llguidance", "regex"]


class Constraint(Protocol):
    """One generation's position in a grammar (see `agent.runtime.DecodeConstraint`)."""

    def forced(self, budget: int) -> list[int]:
        """Tokens that are the only way on from here, already taken (may be empty)."""

    def packed_mask(self, budget: int) -> np.ndarray:
        """The tokens that may be sampled now, as packed bits (uint32 words)."""

    def logit_bias(self, budget: int, width: int) -> Any:
        """`packed_mask` as an additive float32 logit bias of `width` (0 or -1e30)."""

    def check(self, token: int, budget: int) -> bool:
        """Whether a sampled token may be taken: its mask bit, and whatever the mask
        alone cannot say (llguidance: that a plan to finish in budget remains)."""

    def fallback(self, budget: int) -> int:
        """A token that may always be taken now (used when sampled ones are refused)."""

    def advance(self, token: int) -> None:
        """Take `token`."""

    def is_finished(self) -> bool:
        """True once an end token was taken."""


class Grammar(Protocol):
    """A compiled output grammar bound to one tokenizer and one set of end tokens."""

    engine: EngineName

    @property
    def end_ids(self) -> tuple[int, ...]:
        """The end tokens the grammar was compiled for."""

    def min_tokens(self) -> int:
        """Tokens a complete output needs at most from the start, the end token included."""

    def start(self) -> Constraint:
        """A fresh constraint at the start of the grammar."""
