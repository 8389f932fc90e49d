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
before letters) is taken. In a JSON output, where the planner knows whether it stands
inside a string, a brace or bracket comes before a quote outside strings: at `{` a quote
would open an optional property (and with it, in a recursive schema, the same object
again without end), where `}` closes the object at once. Where a required property is
itself recursive (a list of headers, each with optional sub-headers, at least one item),
the first key in byte order may be the recursive one: a plan that nests deeper than
`_MAX_NESTING` levels is given up and the search runs once more with keys tried in
reverse byte order. A byte chosen eight times in a
row is demoted until the next forced bytes, so patterns such as `[a-z]+@` reach their
`@`. Where that goes round in circles (a wildcard before a literal: `.*\\.json`), the
literal runs of the grammar's patterns are tried as stepping stones (`hints.py`); when
every byte has been demoted twice over, the search gives up rather than fill the whole
byte allowance. A plan is
not always the shortest completion, only a valid one: a too-long plan costs freedom
near the end of the budget, never validity.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from llguidance import LLMatcher, LLTokenizer

from agent.constrained.json_lexer import JsonLexState

# Closers first, then separators and punctuation that patterns often wait for, then the
# smallest digit and letters; every other byte comes after.
_PREFERENCE = b'"}],@._-/: +0aA1'
# Outside strings of a JSON output: close a container before opening a string.
_PREFERENCE_OUTSIDE_STRINGS = b'}]",@._-/: +0aA1'
_DEMOTE_AFTER = 8
_ROUNDS = 2  # rounds through every demoted byte before a plan is given up
_LONG_STRETCH = 16  # bytes without forced ones that call for hints (then 32, 64...)
_HINT_DEPTH = 3  # hints in a row to get past one wildcard
_HINT_BRANCHES = 512  # branches one plan may explore, over all its wildcards
_MAX_NESTING = 32  # containers a plan may open beyond where it starts


def byte_preference(
    byte_tokens: Sequence[int | None], first: bytes = _PREFERENCE
) -> tuple[int, ...]:
    """Single-byte token ids in the order the planner tries them at a choice."""
    order = list(first)
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


@dataclass
class _HintSearch:
    hints: Sequence[bytes]
    branches: int  # left to explore in this plan
    error: str = ""  # the matcher's own error, when one stopped the search (a parser limit)
    keys_reversed: bool = False  # inside keys, try bytes in reverse order
    too_deep: bool = False  # the search nested past `_MAX_NESTING`


def _nested(
    start: JsonLexState | None, lex: JsonLexState | None, data: bytes, search: _HintSearch
) -> JsonLexState | None:
    """`lex` after `data`; marks the search too deep when it nests `_MAX_NESTING`
    containers past `start`."""
    if lex is None or start is None:
        return None
    lex = lex.after(data)
    if len(lex.stack) > len(start.stack) + _MAX_NESTING:
        search.too_deep = True
    return lex


class Planner:
    """Finds plans over one tokenizer's single-byte tokens."""

    def __init__(self, tokenizer: LLTokenizer, byte_tokens: Sequence[int | None]) -> None:
        self.tokenizer = tokenizer
        self.byte_tokens = list(byte_tokens)
        self.order = byte_preference(byte_tokens)
        self.order_outside_strings = byte_preference(byte_tokens, _PREFERENCE_OUTSIDE_STRINGS)
        printable = bytes(range(0x7E, 0x1F, -1)).replace(b'"', b"")
        self.order_keys_reversed = byte_preference(byte_tokens, b'"' + printable)

    def bytes_as_tokens(self, data: bytes) -> list[int] | None:
        tokens = [self.byte_tokens[b] for b in data]
        return None if None in tokens else tokens  # type: ignore[return-value]

    def complete(
        self,
        matcher: LLMatcher,
        max_bytes: int,
        hints: Sequence[bytes] = (),
        lex: JsonLexState | None = None,
    ) -> Plan | None:
        """A plan of at most `max_bytes` bytes from `matcher`'s position (left untouched).

        `hints` (witness runs of the grammar's patterns, see `hints.pattern_hints`) are
        tried where greedy choice goes round in circles, before demotion. `lex` is where
        a JSON output stands at that position (None for other grammars).
        """
        return self.complete_or_error(matcher, max_bytes, hints, lex)[0]

    def complete_or_error(
        self,
        matcher: LLMatcher,
        max_bytes: int,
        hints: Sequence[bytes] = (),
        lex: JsonLexState | None = None,
    ) -> tuple[Plan | None, str]:
        """`complete`, and when no plan was found because the matcher itself failed (a
        parser limit such as too many items in one row), llguidance's error: a grammar
        too wide for the parser is not an unsatisfiable one, and the user should hear which.
        """
        search = _HintSearch(hints, _HINT_BRANCHES)
        out = self._greedy(matcher.deep_copy(), max_bytes, search, _HINT_DEPTH, lex)
        if out is None and search.too_deep:
            search = _HintSearch(hints, _HINT_BRANCHES, keys_reversed=True)
            out = self._greedy(matcher.deep_copy(), max_bytes, search, _HINT_DEPTH, lex)
        return (None, search.error) if out is None else (Plan(out), "")

    def _greedy(
        self,
        probe: LLMatcher,
        max_bytes: int,
        search: _HintSearch,
        depth: int,
        lex0: JsonLexState | None,
    ) -> bytes | None:
        """Bytes that finish from `probe` (which consumes them).

        At the top level (`depth` is the maximum) that means to the end of the output.
        Below, it is one branch of a hint search, which only has to get past the
        wildcard: it ends with success at the next forced bytes or at an end, and with
        failure where it would go round in circles again and has no hints left.
        """
        top = depth == _HINT_DEPTH
        out = bytearray()
        demoted: list[int] = []
        last, run, rounds = -1, 0, 0
        stretch = 0  # bytes since the last forced ones, each a single-byte token
        lex = lex0
        while len(out) <= max_bytes:
            if probe.is_accepting():
                return bytes(out)
            forced = probe.compute_ff_bytes()
            if forced:
                if not top:
                    return bytes(out)  # past the wildcard
                tokens = self.bytes_as_tokens(forced)
                if tokens is None or not probe.consume_tokens(tokens):
                    search.error = probe.get_error() if probe.is_error() else ""
                    return None
                out += forced
                lex = _nested(lex0, lex, forced, search)
                if search.too_deep:
                    return None
                last, run, rounds, stretch = -1, 0, 0, 0
                demoted.clear()  # a new stretch: demotions were about the last one
                continue
            chosen = self._choose(probe, demoted, lex, search.keys_reversed)
            if chosen is None:
                search.error = probe.get_error() if probe.is_error() else ""
                return None
            if chosen in demoted:  # every other byte is demoted: start a new round
                rounds += 1
                if rounds > _ROUNDS:
                    return None  # going round in circles for good
                demoted.clear()
            data = self.tokenizer.decode_bytes([chosen])
            out += data
            lex = _nested(lex0, lex, data, search)
            if search.too_deep:
                return None
            stretch += 1
            run = run + 1 if chosen == last else 1
            last = chosen
            repeating = run >= _DEMOTE_AFTER and chosen not in demoted
            # A long stretch without forced bytes goes round in circles too (`._._._`).
            wandering = stretch >= _LONG_STRETCH and stretch & (stretch - 1) == 0
            if not (repeating or wandering):
                continue
            # Try the literals the patterns wait for, from where this stretch began (a
            # whole value: `a@a.aa`), then from where the run began.
            if search.hints and depth > 0:
                found = None
                backs = (stretch, run) if top and stretch > run else (run,)
                for back in backs if repeating else (stretch,):
                    # A wandering stretch may still finish: only a shorter way past it
                    # replaces it.
                    limit = None if repeating else back
                    found = self._hints_from(
                        probe, out, back, max_bytes, search, depth - 1, limit, lex0
                    )
                    if found is not None:
                        stretch += found - back
                        break
                if found is not None:
                    # Rare: the state is read again over the whole output so far.
                    lex = lex0.after(bytes(out)) if lex0 is not None else None
                    last, run = -1, 0
                    continue
            if not top:
                return None  # a branch of a hint search: give it up
            if repeating:
                demoted.append(chosen)
        return None

    def _hints_from(
        self,
        probe: LLMatcher,
        out: bytearray,
        back: int,
        max_bytes: int,
        search: _HintSearch,
        depth: int,
        limit: int | None,
        lex0: JsonLexState | None,
    ) -> int | None:
        """Replace the last `back` bytes (single-byte tokens) by a hint search's finding
        (of at most `limit` bytes, if given).

        On success `probe` and `out` hold the finding and its length is returned; on
        failure both are as they were.
        """
        saved = bytes(out[-back:])
        probe.rollback(back)
        del out[-back:]
        lex = lex0.after(bytes(out)) if lex0 is not None else None
        found = self._through_hints(probe, max_bytes - len(out), search, depth, lex)
        if found is not None and limit is not None and len(found) > limit:
            found = None
        if found is not None:
            tokens = self.bytes_as_tokens(found)
            if tokens is not None and probe.try_consume_tokens(tokens) == len(tokens):
                out += found
                return len(tokens)
        replay = self.bytes_as_tokens(saved)
        if replay is None or probe.try_consume_tokens(replay) != len(replay):
            raise AssertionError("the matcher must take back bytes it took before")
        out += saved
        return None

    def _through_hints(
        self,
        probe: LLMatcher,
        max_bytes: int,
        search: _HintSearch,
        depth: int,
        lex: JsonLexState | None,
    ) -> bytes | None:
        """Bytes past a wildcard that start with a hint, with at most `depth` more hints.

        Iterative deepening: every single hint first, then pairs, and so on, so that a
        long hint a wildcard also accepts does not use up the branches before a short
        one that gets past is tried; of the ways past at one depth, the shortest.
        """
        for further in range(depth + 1):
            best: bytes | None = None
            for hint in search.hints:
                tokens = self.bytes_as_tokens(hint)
                if tokens is None or len(hint) > max_bytes or search.branches <= 0:
                    continue
                branch = probe.deep_copy()
                if branch.try_consume_tokens(tokens) != len(tokens):
                    continue
                search.branches -= 1
                after = lex.after(hint) if lex is not None else None
                rest = self._greedy(branch, max_bytes - len(hint), search, further, after)
                if rest is not None and (best is None or len(hint) + len(rest) < len(best)):
                    best = hint + rest
            if best is not None:
                return best  # the shortest way past with this many hints
        return None

    def _choose(
        self,
        probe: LLMatcher,
        demoted: list[int],
        lex: JsonLexState | None,
        keys_reversed: bool = False,
    ) -> int | None:
        order = self.order
        if lex is not None and lex.stack and not lex.in_string:
            order = self.order_outside_strings
        elif keys_reversed and lex is not None and lex.in_key:
            order = self.order_keys_reversed
        for token in order:
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
