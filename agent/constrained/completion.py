"""A short way to finish: the completion that keeps llguidance outputs inside the budget.

llguidance answers "which tokens may come next" but not "how many tokens are still
needed", and without that a model can wander into a long required value (a string with
`minLength: 300`, ten more required properties) that no longer fits `max_tokens`, and
the output is cut off. So a constraint always holds a *plan*: a concrete byte string that
finishes the output from the current position, checked by the matcher itself. As long as
the plan fits the remaining budget, following it always ends the output in time; a token
that leaves no fitting plan is refused before it is fed (see `LLGuidanceConstraint`).

Plans are found greedily: forced bytes are taken as they come, and at a choice the first
allowed byte of a preference order that closes things early (quotes, braces, separators
before letters) is taken; a byte chosen eight times in a row is demoted until the next
forced bytes, so patterns such as `[a-z]+@` reach their `@`. A plan is not always the
shortest completion, only a valid one: a too-long plan costs freedom near the end of
the budget, never validity.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from llguidance import LLMatcher, LLTokenizer

# Closers first, then separators and punctuation that patterns often wait for, then the
# smallest digit and letters; every other byte comes after.
_PREFERENCE = b'"}],@._-/: +0aA1'
_DEMOTE_AFTER = 8


def byte_preference(byte_tokens: Sequence[int | None]) -> tuple[int, ...]:
    """Single-byte token ids in the order the planner tries them at a choice."""
    order = list(_PREFERENCE)
    order += [b for b in range(0x20, 0x7F) if b not in order]
    order += [b for b in range(256) if b not in order]
    return tuple(t for b in order if (t := byte_tokens[b]) is not None)


@dataclass
class Plan:
    """Bytes that finish the output from one position, and (lazily) their tokens.

    `cost` counts the end token too: a plan of n tokens needs n + 1 of the budget.
    """

    data: bytes
    tokens: list[int] | None = None
    _byte_tokens: list[int] | None = field(default=None, repr=False)

    @property
    def byte_cost(self) -> int:
        """An upper bound on the cost, with every byte a token of its own."""
        return len(self.data) + 1

    def fits(self, budget: int, planner: Planner, matcher: LLMatcher) -> bool:
        if self.byte_cost <= budget:
            return True
        return self.token_cost(planner, matcher) <= budget

    def token_cost(self, planner: Planner, matcher: LLMatcher) -> int:
        return len(self.as_tokens(planner, matcher)) + 1

    def as_tokens(self, planner: Planner, matcher: LLMatcher) -> list[int]:
        """The plan as tokens the matcher accepts from its current position."""
        if self.tokens is None:
            self.tokens = planner.tokenize(self.data, matcher)
        return self.tokens

    def after(self, token: int, token_bytes: bytes) -> Plan | None:
        """The rest of the plan once `token` is taken, if the token follows the plan."""
        if self.tokens and self.tokens[0] == token:
            return Plan(self.data[len(token_bytes) :], self.tokens[1:])
        if token_bytes and self.data.startswith(token_bytes):
            return Plan(self.data[len(token_bytes) :])
        return None


class Planner:
    """Finds plans over one tokenizer's single-byte tokens."""

    def __init__(self, tokenizer: LLTokenizer, byte_tokens: Sequence[int | None]) -> None:
        self.tokenizer = tokenizer
        self.byte_tokens = list(byte_tokens)
        self.order = byte_preference(byte_tokens)

    def bytes_as_tokens(self, data: bytes) -> list[int] | None:
        tokens = [self.byte_tokens[b] for b in data]
        return None if None in tokens else tokens  # type: ignore[return-value]

    def complete(self, matcher: LLMatcher, max_bytes: int) -> Plan | None:
        """A plan of at most `max_bytes` bytes from `matcher`'s position (left untouched)."""
        probe = matcher.deep_copy()
        out = bytearray()
        demoted: list[int] = []
        last, run = -1, 0
        while len(out) <= max_bytes:
            if probe.is_accepting():
                return Plan(bytes(out))
            forced = probe.compute_ff_bytes()
            if forced:
                tokens = self.bytes_as_tokens(forced)
                if tokens is None or not probe.consume_tokens(tokens):
                    return None
                out += forced
                last, run = -1, 0
                demoted.clear()  # a new stretch: demotions were about the last one
                continue
            chosen = self._choose(probe, demoted)
            if chosen is None:
                return None
            out += self.tokenizer.decode_bytes([chosen])
            run = run + 1 if chosen == last else 1
            last = chosen
            if run >= _DEMOTE_AFTER and chosen not in demoted:
                demoted.append(chosen)
        return None

    def _choose(self, probe: LLMatcher, demoted: list[int]) -> int | None:
        for token in self.order:
            if token not in demoted and probe.try_consume_tokens([token]) == 1:
                return token
        for token in demoted:
            if probe.try_consume_tokens([token]) == 1:
                return token
        return None

    def tokenize(self, data: bytes, matcher: LLMatcher) -> list[int]:
        """Ordinary tokens for `data` when the matcher takes them, else one per byte."""
        tokens = self.tokenizer.tokenize_bytes(data)
        taken = matcher.try_consume_tokens(tokens)
        if taken:
            matcher.rollback(taken)
        if taken == len(tokens):
            return tokens
        fallback = self.bytes_as_tokens(data)
        assert fallback is not None  # the plan was built from single-byte tokens
        return fallback

    def revalidate(self, plan: Plan, matcher: LLMatcher) -> Plan | None:
        """`plan` as tokens that finish the output from `matcher`'s position, if it does.

        Tokens are what gets checked: a plan of n tokens costs n matcher steps, its bytes
        several times more.
        """
        tokens = plan.tokens
        if tokens is None:
            tokens = self.tokenizer.tokenize_bytes(plan.data)
        taken = matcher.try_consume_tokens(tokens)
        ok = taken == len(tokens) and matcher.is_accepting()
        if taken:
            matcher.rollback(taken)
        if ok:
            return Plan(plan.data, tokens)
        if plan.tokens is None:  # the ordinary tokens may split differently: try the bytes
            byte_tokens = self.bytes_as_tokens(plan.data)
            if byte_tokens is not None:
                taken = matcher.try_consume_tokens(byte_tokens)
                ok = taken == len(byte_tokens) and matcher.is_accepting()
                if taken:
                    matcher.rollback(taken)
                if ok:
                    return Plan(plan.data, self.tokenize(plan.data, matcher))
        return None
