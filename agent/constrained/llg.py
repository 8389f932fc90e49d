"""The llguidance engine: grammars in milliseconds, masks in microseconds.

llguidance (the engine behind llama.cpp's, vLLM's and SGLang's structured output) compiles
a JSON Schema, a regex or a Lark grammar lazily against the tokenizer's token trie, so a
new schema costs milliseconds instead of the seconds an automaton over the whole
vocabulary takes. Its bitmask becomes an additive logit bias (`masks.bias`), never
Outlines' Metal kernel, so this runs on every MLX backend.

What llguidance does not give is the number of tokens still needed, which the budget
guarantee rests on; each constraint therefore keeps a plan (`completion.Plan`), a verified
way to finish that fits the remaining budget, and refuses a sampled token that would leave
none. End tokens are mapped: llguidance ends an output with the model's end-of-sequence
token, and a grammar compiled with other end tokens (a tool call ends with
`<|tool_call_end|>`) gets those instead, in the mask and when it finishes.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from agent.constrained import masks
from agent.constrained.completion import Plan, Planner
from agent.constrained.deadline import finished_within
from agent.constrained.engine import EngineName
from agent.constrained.hints import LazyHints
from agent.constrained.json_lexer import JsonLexState
from agent.constrained.target import GrammarTarget
from schemas.errors import SchemaCompileError, UnsupportedSchemaError

MAX_PLAN_BYTES = 1 << 16
MAX_ITEMS_IN_ROW = 50_000  # 12,500 optional properties (its 65k symbols run out first)
_ROW_LIMIT = "Current row has"  # how llguidance's error for that limit begins
# Fuel for building the lexer (about 50k a millisecond). The default of 1,000,000
# refuses an enum of 100,000 strings, which 10,000,000 builds in half a second.
INITIAL_LEXER_FUEL = 10_000_000
_CACHE_ENTRIES = 128


class LLGuidanceRefused(SchemaCompileError):
    """llguidance cannot serve this grammar (the regex engine may)."""

    def __init__(self, message: str, construct: str | None = None) -> None:
        self.construct = construct
        super().__init__(message)

    def as_user_error(self) -> SchemaCompileError:
        if self.construct:
            return UnsupportedSchemaError(self.construct, detail=str(self))
        return SchemaCompileError(str(self))


class LLGuidanceTimeout(LLGuidanceRefused):
    """Building the grammar took longer than the compile timeout."""


@dataclass(frozen=True)
class _Shared:
    """What every constraint of one tokenizer reuses."""

    planner: Planner
    token_bytes: list[bytes]
    ordinary_words: np.ndarray
    llg_eos: tuple[int, ...]


_SHARED: dict[int, _Shared] = {}
_SHARED_LOCK = threading.Lock()


def _shared(target: GrammarTarget) -> _Shared:
    with _SHARED_LOCK:
        found = _SHARED.get(id(target))
        if found is None or found.token_bytes is not target.vocabulary.token_bytes:
            tokenizer = target.llg_tokenizer
            found = _Shared(
                planner=Planner(tokenizer, target.byte_tokens),
                token_bytes=target.vocabulary.token_bytes,
                ordinary_words=target.ordinary_words,
                llg_eos=tuple(tokenizer.eos_tokens),
            )
            _SHARED[id(target)] = found
        return found


class LLGuidanceGrammar:
    """A compiled llguidance grammar with the plan that finishes it from the start."""

    def __init__(
        self,
        target: GrammarTarget,
        matcher: Any,
        plan: Plan,
        end_ids: tuple[int, ...],
        json_output: bool,
        source: str,
        engine: EngineName = "llguidance",
        hints: Sequence[bytes] = (),
    ) -> None:
        self.engine: EngineName = engine
        self.target = target
        self.matcher = matcher  # at the start; constraints work on deep copies
        self.plan = plan
        self.end_ids = end_ids
        self.json_output = json_output
        self.source = source
        self.hints = hints
        self.shared = _shared(target)
        self._min_tokens: int | None = None
        self._lock = threading.Lock()

    def min_tokens(self) -> int:
        if self._min_tokens is None:
            with self._lock:
                probe = self.matcher.deep_copy()
                self._min_tokens = self.plan.token_cost(self.shared.planner, probe)
        return self._min_tokens

    def start(self) -> LLGuidanceConstraint:
        return LLGuidanceConstraint(self)


class LLGuidanceConstraint:
    """One generation's position in an llguidance grammar, with its plan to finish."""

    def __init__(self, grammar: LLGuidanceGrammar) -> None:
        self.grammar = grammar
        shared = grammar.shared
        self.planner = shared.planner
        self.matcher = grammar.matcher.deep_copy()
        self.plan = Plan(grammar.plan.data, grammar.plan.tokens)
        self.end_ids = grammar.end_ids
        self._hints = grammar.hints
        self._end_set = frozenset(grammar.end_ids)
        self._llg_eos = shared.llg_eos
        self._token_bytes = shared.token_bytes
        self._ordinary = shared.ordinary_words
        self._words = np.zeros_like(self._ordinary)  # uint32, written by llguidance
        self._lex = JsonLexState() if grammar.json_output else None
        self._checked: tuple[int, Plan] | None = None
        self._finished = False

    # ------------------------------------------------------------ Constraint
    def forced(self, budget: int) -> list[int]:
        if self._finished:
            return []
        matcher = self.matcher
        if matcher.is_stopped():  # nothing but the end can come
            return self._take([self.end_ids[0]])
        if not self.plan.fits(budget - 1, self.planner, matcher):
            # No slack left: any other token would leave no fitting plan. Finish now.
            return self._take([*self.plan.as_tokens(self.planner, matcher), self.end_ids[0]])
        forced_bytes = matcher.compute_ff_bytes()
        if not forced_bytes:
            return []
        # All the forced bytes, the last (possibly extensible) token too: llguidance's
        # own `compute_ff_tokens` leaves it to the model, and a small model then picks
        # merged tokens such as `""` that close a string before writing anything.
        tokens = self.planner.tokenizer.tokenize_bytes(forced_bytes)
        taken = matcher.try_consume_tokens(tokens)
        try:
            rest = self._plan_after_run(tokens) if taken == len(tokens) else None
            if taken == len(tokens) and rest is None:
                lex = self._lex.after(forced_bytes) if self._lex is not None else None
                rest = self.planner.complete(matcher, MAX_PLAN_BYTES, self._hints, lex)
            fits = rest is not None and rest.fits(budget - len(tokens), self.planner, matcher)
        finally:
            if taken:
                matcher.rollback(taken)
        if not fits:
            return []
        for token in tokens:
            self._consume(token)
        assert rest is not None
        self.plan = rest
        return tokens

    def logit_bias(self, budget: int, width: int) -> Any:
        return masks.bias(self.packed_mask(budget), width)

    def packed_mask(self, budget: int) -> np.ndarray:
        """The allowed tokens as packed bits (valid until the next call)."""
        words = self._words
        self.matcher.unsafe_compute_mask_ptr(words.ctypes.data, words.nbytes)
        ends = any((int(words[t >> 5]) >> (t & 31)) & 1 for t in self._llg_eos)
        np.bitwise_and(words, self._ordinary, out=words)
        if ends:
            for token in self.end_ids:
                words[token >> 5] |= np.uint32(1 << (token & 31))
        return words

    def check(self, token: int, budget: int) -> bool:
        self._checked = None
        if not masks.allowed(self._words, token):
            return False
        if token in self._end_set:
            return self.matcher.is_accepting()
        data = self._token_bytes[token]
        following = self.plan.after(token, data)
        if self._lex is not None and self._lex.after(data).number_too_long and following is None:
            return False
        matcher = self.matcher
        if matcher.try_consume_tokens([token]) != 1:
            return False
        try:
            lex = self._lex.after(data) if self._lex is not None else None
            plan = self._plan_after(token, data, budget - 1, following, lex)
        finally:
            matcher.rollback(1)
        if plan is None:
            return False
        self._checked = (token, plan)
        return True

    def fallback(self, budget: int) -> int:
        tokens = self.plan.as_tokens(self.planner, self.matcher)
        return tokens[0] if tokens else self.end_ids[0]

    def advance(self, token: int) -> None:
        if self._finished:
            raise RuntimeError("the grammar already finished")
        if token in self._end_set:
            if not self.matcher.is_accepting():
                raise RuntimeError("the output cannot end here")
            self.matcher.consume_token(self._llg_eos[0])
            self._finished = True
            return
        checked, self._checked = self._checked, None
        data = self._consume(token)
        if checked is not None and checked[0] == token:
            self.plan = checked[1]
        else:
            following = self.plan.after(token, data)
            plan = self._plan_after(token, data, MAX_PLAN_BYTES, following, self._lex)
            if plan is None:
                raise RuntimeError("no way to finish the output after this token")
            self.plan = plan

    def is_finished(self) -> bool:
        return self._finished

    # ------------------------------------------------------------ plans
    def _consume(self, token: int) -> bytes:
        if not self.matcher.consume_token(token):
            raise RuntimeError(f"token {token} is not allowed by the grammar here")
        data = self._token_bytes[token]
        if self._lex is not None:
            self._lex = self._lex.after(data)
        return data

    def _take(self, tokens: list[int]) -> list[int]:
        for token in tokens:
            self.advance(token)
        return tokens

    def _plan_after(
        self,
        token: int,
        data: bytes,
        budget: int,
        following: Plan | None,
        lex: JsonLexState | None,
    ) -> Plan | None:
        """A plan from the matcher's position (just past `token`, where a JSON output
        stands at `lex`) that fits `budget`."""
        planner, matcher = self.planner, self.matcher
        if following is not None and following.fits(budget, planner, matcher):
            return following
        if following is None:
            reused = self._same_value(data) or planner.revalidate(self.plan, matcher)
            if reused is not None and reused.fits(budget, planner, matcher):
                return reused
        fresh = planner.complete(
            matcher, min(MAX_PLAN_BYTES, max(budget, 1) * 16), self._hints, lex
        )
        if fresh is not None and fresh.fits(budget, planner, matcher):
            return fresh
        return None

    def _same_value(self, data: bytes) -> Plan | None:
        """The plan, still valid, when `data` stayed inside the current JSON value.

        Only the plan's tokens up to the end of that value need checking (see
        `json_lexer`): what follows a value lexeme does not depend on its content.
        """
        before = self._lex
        if before is None or not before.in_value:
            return None
        after = before.after(data)
        if after.serial != before.serial or not after.in_value:
            return None
        tokens = self.plan.tokens
        if tokens is None:
            tokens = self.planner.tokenizer.tokenize_bytes(self.plan.data)
        state, needed = after, 0
        for needed, token in enumerate(tokens, start=1):  # noqa: B007
            state = state.after(self._token_bytes[token])
            if state.serial != after.serial:
                break
        else:
            return None
        taken = self.matcher.try_consume_tokens(tokens[:needed])
        if taken:
            self.matcher.rollback(taken)
        return Plan(self.plan.data, tokens) if taken == needed else None

    def _plan_after_run(self, tokens: Sequence[int]) -> Plan | None:
        plan: Plan | None = self.plan
        for token in tokens:
            if plan is None:
                return None
            plan = plan.after(token, self._token_bytes[token])
        return plan


# ------------------------------------------------------------------ compiling
_LIMITS: Any = None
_CACHE: OrderedDict[tuple[Any, ...], LLGuidanceGrammar] = OrderedDict()
_CACHE_LOCK = threading.Lock()


def _limits() -> Any:
    global _LIMITS
    if _LIMITS is None:
        from llguidance import LLParserLimits

        # llguidance's default of 2,000 items in one parser row refuses an object of
        # about 500 optional properties; 1,000 take 4,007 items and 0.1 s with the 100k
        # vocabulary. Wider rows cost time, which the compile deadline bounds.
        _LIMITS = LLParserLimits(
            verbose_errors=False,
            max_items_in_row=MAX_ITEMS_IN_ROW,
            initial_lexer_fuel=INITIAL_LEXER_FUEL,
        )
    return _LIMITS


def compile_llguidance(
    target: GrammarTarget,
    grammar_text: str,
    end_ids: Sequence[int],
    *,
    json_output: bool,
    timeout: float,
    engine: EngineName = "llguidance",
    hints: Sequence[bytes] | None = None,
) -> tuple[LLGuidanceGrammar, bool]:
    """The grammar for `grammar_text` (llguidance's JSON form): (grammar, from cache).

    `hints` are the literal stepping stones for the planner (`hints.py`); by default
    they are read from the patterns in `grammar_text`.
    """
    # Hints read from the grammar text add nothing to the key (the text is in it).
    found: Sequence[bytes] = tuple(hints) if hints is not None else LazyHints(grammar_text)
    own = found if isinstance(found, tuple) else None
    key = (id(target), grammar_text, tuple(end_ids), json_output, engine, own)
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
        if cached is not None and cached.target is target:
            _CACHE.move_to_end(key)
            return cached, True
    grammar = _build(target, grammar_text, tuple(end_ids), json_output, timeout, engine, found)
    with _CACHE_LOCK:
        _CACHE[key] = grammar
        while len(_CACHE) > _CACHE_ENTRIES:
            _CACHE.popitem(last=False)
    return grammar, False


def clear_cache() -> None:
    with _CACHE_LOCK:
        _CACHE.clear()


def _build(
    target: GrammarTarget,
    grammar_text: str,
    end_ids: tuple[int, ...],
    json_output: bool,
    timeout: float,
    engine: EngineName,
    hints: Sequence[bytes],
) -> LLGuidanceGrammar:
    """Build the matcher and its first plan on a thread, within `timeout` seconds.

    llguidance builds its lexer lazily, so the first plan (which walks the grammar to an
    end) is part of the compile and of its deadline. A build that overruns is abandoned:
    llguidance's own fuel limits bound how long it can go on.
    """
    tokenizer = target.llg_tokenizer  # built outside the deadline: once per model
    planner = _shared(target).planner
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            from llguidance import LLMatcher

            matcher = LLMatcher(tokenizer, grammar_text, log_level=0, limits=_limits())
            if matcher.is_error():
                outcome["error"] = matcher.get_error()
                return
            outcome["matcher"] = matcher
            outcome["plan"], outcome["plan_error"] = planner.complete_or_error(
                matcher, MAX_PLAN_BYTES, hints, JsonLexState() if json_output else None
            )
        except BaseException as exc:  # reported to the caller
            outcome["error"] = f"{type(exc).__name__}: {exc}"

    if not finished_within(timeout, work, "llguidance-compile"):
        raise LLGuidanceTimeout(
            f"llguidance took more than {timeout:g} s to build the grammar; simplify the "
            "schema or raise the compile timeout"
        )
    if "error" in outcome:
        raise refusal_of(outcome["error"])
    plan = outcome.get("plan")
    # A grammar too wide for the parser (a row over its item limit) fails at once, and
    # is not unsatisfiable; other matcher errors met while searching (a step's item
    # limit, after wandering) are the search giving up on a grammar with no way out.
    if plan is None and _ROW_LIMIT in outcome.get("plan_error", ""):
        raise refusal_of(outcome["plan_error"])
    if plan is None:
        raise LLGuidanceRefused(
            "llguidance found no way to finish this grammar (it may be unsatisfiable)"
        )
    return LLGuidanceGrammar(
        target, outcome["matcher"], plan, end_ids, json_output, grammar_text, engine, hints
    )


def refusal_of(message: str) -> LLGuidanceRefused:
    """llguidance's error as one line a user can act on (its own text names Rust
    internals: rows, items, a JSON column)."""
    first = message.strip().splitlines()[0] if message.strip() else "unknown error"
    if "recursion limit exceeded" in first:
        return LLGuidanceRefused(
            "llguidance cannot read a schema nested this deeply (recursion limit exceeded, "
            "about 125 levels of JSON); flatten it, or use $defs and $ref"
        )
    if "grammar.symbols.len()" in first:  # an assertion on its symbol count (u16)
        return LLGuidanceRefused(
            "the grammar is too large for llguidance (over 65,000 symbols); use fewer "
            "properties or alternatives"
        )
    if _ROW_LIMIT in first:
        detail = first.removeprefix("Parser Error: ").split(";")[0].lower()
        return LLGuidanceRefused(
            f"the grammar is too wide for llguidance ({detail}); use fewer optional "
            "properties or alternatives"
        )
    if "Unimplemented keys" in first:
        keys = first.split("[", 1)[-1].rstrip("]").replace('"', "").strip()
        return LLGuidanceRefused(f"llguidance does not implement {keys}", keys.split(",")[0])
    if "oneOf" in first:
        return LLGuidanceRefused("llguidance cannot prove oneOf branches exclusive", "oneOf")
    if "look-around" in message or "regex parse error" in first:
        return LLGuidanceRefused(f"llguidance cannot use this pattern: {first}", "pattern")
    return LLGuidanceRefused(f"llguidance refused the grammar: {first[:300]}")
