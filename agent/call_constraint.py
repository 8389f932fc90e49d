"""The decode constraint of one agent step: free text, grammar-checked tool calls, answers.

A step's output is a small state machine over the runtime's `DecodeConstraint` protocol:

    start ──(auto)──> free ──<|tool_call_start|>──> call ──<|tool_call_end|>──> free
      │                 └──<|im_end|>──> done
      ├──(required / a tool name)──> call (start token forced) ──> done
      └──(response_format)──> call | answer (JSON grammar) ──> done

Inside `call` a compiled grammar accepts exactly a JSON array of call objects naming
registered tools with valid arguments; its end token is `<|tool_call_end|>` (the grammar
is compiled with that token as its "end of output"), so the call's end is the grammar's.
Text outside calls is free, except that LFM2's structural tokens (turn and tool-list
markers) are masked so a step cannot forge a new turn.

Budget invariant (as in `GrammarConstraint`): the call-start token is only offered when
the call's shortest completion fits in the tokens left, so a call is never truncated.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np

from agent.constrained import masks
from agent.constrained.compile import DEFAULT_COMPILE_TIMEOUT
from agent.constrained.defaults import DEFAULT_MAX_PARALLEL_CALLS
from agent.constrained.engine import Constraint, Grammar
from agent.constrained.output_types import OutputSpec, resolve_output_type
from agent.constrained.select import EngineChoice, compile_output
from agent.constrained.target import target_for
from agent.models.chat_template import LFM2_SPECIAL_TOKENS
from agent.token_runtime import TokenRuntime as Model
from agent.tool_parser import CALL_END, CALL_START

State = Literal["start", "free", "call", "answer", "done"]
ChoiceMode = Literal["auto", "none", "required"]


@dataclass(frozen=True)
class CallTokens:
    """The ids the constraint needs from a model with LFM2's call tokens."""

    call_start: int
    call_end: int
    eos_ids: frozenset[int]
    blocked: frozenset[int]  # structural tokens never allowed in free text
    vocab_size: int

    @classmethod
    def for_model(cls, model: Model) -> CallTokens | None:
        """None when the vocabulary lacks the call tokens (calls are then parsed, not
        constrained)."""
        with _CALL_TOKENS_LOCK:
            if model in _CALL_TOKENS:
                return _CALL_TOKENS[model]
        ids = _special_ids(model)
        tokens = None
        if CALL_START in ids and CALL_END in ids:
            blocked = {i for name, i in ids.items() if name != CALL_START} - model.eos_token_ids
            tokens = cls(
                ids[CALL_START],
                ids[CALL_END],
                model.eos_token_ids,
                frozenset(blocked),
                len(model.vocabulary),
            )
        with _CALL_TOKENS_LOCK:
            _CALL_TOKENS[model] = tokens
        return tokens

    def free_words(self, with_call: bool) -> np.ndarray:
        """Free text as a packed mask: every id but the structural tokens (and call-start
        unless `with_call`)."""
        cache = self.__dict__.setdefault("_words", {})
        if with_call not in cache:
            ids = np.ones(self.vocab_size, dtype=np.bool_)
            ids[sorted(self.blocked | {self.call_start})] = False
            ids[self.call_start] = with_call
            cache[with_call] = masks.pack(np.flatnonzero(ids), self.vocab_size)
        return cache[with_call]

    def free_bias(self, width: int, with_call: bool) -> Any:
        """`free_words` as a logit bias, kept: free text is most of an agent's tokens."""
        import mlx.core as mx

        cache = self.__dict__.setdefault("_biases", {})
        key = (width, with_call)
        if key not in cache:
            cache[key] = masks.bias(self.free_words(with_call), width)
            mx.eval(cache[key])  # never left lazy: it is cached and shared across threads
        return cache[key]


_CALL_TOKENS: weakref.WeakKeyDictionary[Model, CallTokens | None] = weakref.WeakKeyDictionary()
_CALL_TOKENS_LOCK = threading.Lock()


def _special_ids(model: Model) -> dict[str, int]:
    """LFM2 structural tokens that exist in the model's vocabulary as single tokens."""
    found: dict[str, int] = {}
    token_bytes = model.vocabulary.token_bytes
    for name in LFM2_SPECIAL_TOKENS:
        ids = model.encode_fragment(name)
        if len(ids) == 1 and token_bytes[ids[0]] == name.encode():
            found[name] = int(ids[0])
    return found


def calls_schema(
    call_schema: dict[str, Any], max_calls: int = DEFAULT_MAX_PARALLEL_CALLS
) -> dict[str, Any]:
    """LFM2's JSON call payload: an array of 1 to `max_calls` call objects."""
    return {"type": "array", "items": call_schema, "minItems": 1, "maxItems": max_calls}


def call_output_spec(
    call_schema: dict[str, Any], max_calls: int = DEFAULT_MAX_PARALLEL_CALLS
) -> OutputSpec:
    """The output request of a call payload for a registry's `call_schema`.

    Every tool's parameters were checked when the tool was made (`tools.Tool`), so the
    payload's schema skips the meta-schema check (0.8 s for 50 BFCL tools).
    """
    return replace(resolve_output_type(calls_schema(call_schema, max_calls)), checked=True)


def compile_call_grammar(
    model: Model,
    tokens: CallTokens,
    call_schema: dict[str, Any],
    timeout: float = DEFAULT_COMPILE_TIMEOUT,
    max_calls: int = DEFAULT_MAX_PARALLEL_CALLS,
    engine: EngineChoice = "auto",
) -> Grammar:
    """The grammar of one call block's payload, ending with `<|tool_call_end|>`."""
    spec = call_output_spec(call_schema, max_calls)
    compiled = compile_output(
        spec, target_for(model), end_ids=(tokens.call_end,), engine=engine, timeout=timeout
    )
    return compiled.grammar


class ToolCallConstraint:
    """One step's constraint (see the module docstring for the states)."""

    def __init__(
        self,
        tokens: CallTokens,
        *,
        mode: ChoiceMode,
        call_grammar: Grammar | None,
        answer_grammar: Grammar | None = None,
    ) -> None:
        if mode != "none" and call_grammar is None:
            raise ValueError(f"tool_choice {mode!r} needs a call grammar")
        self.tokens = tokens
        self.mode: ChoiceMode = mode
        self.call_grammar = call_grammar
        self.answer_grammar = answer_grammar
        self.state: State = "start"
        self.calls = 0
        self._inner: Constraint | None = None
        self._answer_probe: Constraint | None = None  # the answer, before it is chosen
        if mode == "required":
            self.state = "call"  # entered by forcing the start token (see forced)
            self._pending_start = True
        else:
            self._pending_start = False
            if answer_grammar is None:
                self.state = "free"
            elif mode == "none":
                self._enter_answer()

    # ------------------------------------------------------------------ facts
    def call_cost(self) -> int:
        """Tokens the shortest call block takes, start and end tokens included."""
        assert self.call_grammar is not None
        return 1 + self.call_grammar.min_tokens()

    def min_tokens(self) -> int:
        """The fewest tokens this step can end in (the step must be given at least this)."""
        if self.mode == "required":
            return self.call_cost()
        options = [1]  # free text can stop at once (end of turn, or the budget)
        if self.answer_grammar is not None:
            options = [self.answer_grammar.min_tokens()]
            if self.mode == "auto":
                options.append(self.call_cost())
        return min(options)

    def _call_fits(self, budget: int) -> bool:
        return self.mode != "none" and self.call_cost() <= budget

    def _answer_fits(self, budget: int) -> bool:
        return self.answer_grammar is not None and self.answer_grammar.min_tokens() <= budget

    # ------------------------------------------------------- Constraint protocol
    def forced(self, budget: int) -> list[int]:
        if self._pending_start:
            if self.call_cost() > budget:
                return []
            self.advance(self.tokens.call_start)
            return [self.tokens.call_start]
        if self._inner is not None:
            forced = self._inner.forced(budget)
            if forced:
                self._after_inner()
            return forced
        return []

    def packed_mask(self, budget: int) -> np.ndarray:
        if self._inner is not None:
            return self._inner.packed_mask(budget)
        if self.state == "free":
            return self.tokens.free_words(self._call_fits(budget))
        if self.state == "start":  # response_format with tools: a call or the answer
            words = np.zeros(masks.words_for(self.tokens.vocab_size), dtype=np.uint32)
            if self._answer_fits(budget):
                words |= self._probe().packed_mask(budget)[: words.shape[0]]
            if self._call_fits(budget):
                start = self.tokens.call_start
                words[start >> 5] |= np.uint32(1 << (start & 31))
            if not words.any():
                raise RuntimeError(f"neither a call nor the answer fits in {budget} tokens")
            return words
        raise RuntimeError(f"no tokens are allowed in state {self.state}")

    def logit_bias(self, budget: int, width: int) -> Any:
        if self._inner is not None:
            return self._inner.logit_bias(budget, width)
        if self.state == "free":
            return self.tokens.free_bias(width, self._call_fits(budget))
        return masks.bias(self.packed_mask(budget), width)

    def check(self, token: int, budget: int) -> bool:
        if self._inner is not None:
            return self._inner.check(token, budget)
        if self.state == "free":
            return masks.allowed(self.tokens.free_words(self._call_fits(budget)), token)
        if token == self.tokens.call_start:
            return self._call_fits(budget)
        return self._answer_fits(budget) and self._probe().check(token, budget)

    def fallback(self, budget: int) -> int:
        if self._inner is not None:
            return self._inner.fallback(budget)
        if self.state == "start":
            if self._answer_fits(budget):
                return self._probe().fallback(budget)
            return self.tokens.call_start
        return min(self.tokens.eos_ids)  # free text may always end the turn

    def advance(self, token_id: int) -> None:
        if self.state == "done":
            raise RuntimeError("the step already finished")
        if self._pending_start:
            if token_id != self.tokens.call_start:
                raise RuntimeError("a required call must start with the call token")
            self._pending_start = False
            self._enter_call()
            return
        if self._inner is not None:
            self._inner.advance(token_id)
            self._after_inner()
            return
        if token_id == self.tokens.call_start and self.mode != "none":
            self._enter_call()
        elif self.state == "start":
            self._enter_answer()
            self.advance(token_id)
        elif token_id in self.tokens.eos_ids:
            self.state = "done"

    def is_finished(self) -> bool:
        return self.state == "done"

    # ---------------------------------------------------------------- helpers
    def _after_inner(self) -> None:
        assert self._inner is not None
        if not self._inner.is_finished():
            return
        self._inner = None
        if self.state == "call":
            self.calls += 1
            # After a forced call or in a response_format step the turn ends; in auto
            # mode the model may go on writing (or call again).
            free_after = self.mode == "auto" and self.answer_grammar is None
            self.state = "free" if free_after else "done"
        else:
            self.state = "done"

    def _probe(self) -> Constraint:
        if self._answer_probe is None:
            assert self.answer_grammar is not None
            self._answer_probe = self.answer_grammar.start()
        return self._answer_probe

    def _enter_call(self) -> None:
        assert self.call_grammar is not None
        self.state = "call"
        self._inner = self.call_grammar.start()

    def _enter_answer(self) -> None:
        assert self.answer_grammar is not None
        self.state = "answer"
        self._inner = self._probe()
