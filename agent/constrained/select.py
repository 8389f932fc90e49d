"""Compiling a request: llguidance first, the regex engine where llguidance cannot serve.

The regex engine (schema -> regex -> outlines-core automaton) is three orders of magnitude
slower to compile, but it covers keywords llguidance refuses (`not`, `uniqueItems`,
dependencies, `if/then/else`, `oneOf` it cannot prove exclusive, lookaround-free
rewrites of patterns, ...) and knows the exact number of tokens an output still needs. So
`engine="auto"` tries llguidance, and turns to the regex engine when llguidance refuses
the request, or when llguidance's plan does not fit `max_tokens` but the exact count
might. The union covers at least what each engine covers alone.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from agent.constrained.compile import DEFAULT_COMPILE_TIMEOUT, compile_regex
from agent.constrained.engine import EngineName, Grammar
from agent.constrained.llg import LLGuidanceRefused, compile_llguidance
from agent.constrained.output_types import OutputSpec
from agent.constrained.target import GrammarTarget
from agent.errors import UserError
from schemas.errors import SchemaCompileError

EngineChoice = Literal["auto", "llguidance", "regex"]
ENGINE_CHOICES: tuple[EngineChoice, ...] = ("auto", "llguidance", "regex")


@dataclass(frozen=True)
class CompiledOutput:
    """A request compiled for one tokenizer, and what it cost."""

    spec: OutputSpec
    grammar: Grammar
    compile_ms: float
    cached: bool

    @property
    def engine(self) -> EngineName:
        return self.grammar.engine


def compile_output(
    spec: OutputSpec,
    target: GrammarTarget,
    *,
    end_ids: Sequence[int] | None = None,
    engine: EngineChoice = "auto",
    whitespace: str = "",
    timeout: float = DEFAULT_COMPILE_TIMEOUT,
    max_tokens: int | None = None,
) -> CompiledOutput:
    """Compile `spec` for `target`, ending with `end_ids` (the model's EOS by default)."""
    if engine not in ENGINE_CHOICES:
        raise UserError(f"engine must be one of {', '.join(ENGINE_CHOICES)}, got {engine!r}")
    ends = tuple(sorted(end_ids if end_ids is not None else target.eos_ids))
    t0 = time.perf_counter()
    deadline = t0 + timeout
    if spec.kind == "json":
        from schemas.compiler import check_schema

        check_schema(spec.json_schema)  # an invalid schema is the user's, on any engine
    refused: LLGuidanceRefused | None = None
    llg: Grammar | None = None
    cached = False
    if engine in ("auto", "llguidance"):
        try:
            llg, cached = compile_llguidance(
                target, _llguidance_grammar(spec, whitespace), ends,
                json_output=spec.kind == "json", timeout=timeout,
            )  # fmt: skip
        except LLGuidanceRefused as exc:
            if engine == "llguidance":
                raise exc.as_user_error() from None
            refused = exc
        if llg is not None and (
            engine == "llguidance" or max_tokens is None or llg.min_tokens() <= max_tokens
        ):
            return CompiledOutput(spec, llg, _ms(t0), cached)
    try:
        regex, cached = _compile_regex_engine(
            spec, target, ends, whitespace, max(deadline - time.perf_counter(), 0.5)
        )
    except SchemaCompileError as exc:
        if llg is not None:  # only tried for a tighter count: llguidance stands
            return CompiledOutput(spec, llg, _ms(t0), cached)
        if refused is not None and type(exc) is SchemaCompileError:
            raise refused.as_user_error() from None
        raise
    if llg is not None and regex.min_tokens() >= llg.min_tokens():
        return CompiledOutput(spec, llg, _ms(t0), cached)
    return CompiledOutput(spec, regex, _ms(t0), cached)


def preflight(spec: OutputSpec, whitespace: str = "") -> None:
    """Raise the error `compile_output` would raise for `spec`, without a tokenizer.

    For the CLI, which checks a schema before it loads a model: validity, then whether
    llguidance takes the grammar, else whether the regex engine can express it.
    """
    if spec.kind != "json":
        return
    from llguidance import LLMatcher

    from schemas.compiler import check_schema, schema_to_regex

    check_schema(spec.json_schema)
    try:
        if not LLMatcher.validate_grammar(_llguidance_grammar(spec, whitespace)):
            return
    except LLGuidanceRefused:
        pass
    schema_to_regex(spec.json_schema)


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000


def _llguidance_grammar(spec: OutputSpec, whitespace: str) -> str:
    from llguidance import LLMatcher

    if spec.kind == "json":
        from schemas.narrow import narrow_for_llguidance

        options: dict[str, object] = {"whitespace_flexible": bool(whitespace)}
        if whitespace:
            options["whitespace_pattern"] = whitespace
        try:
            return LLMatcher.grammar_from_json_schema(
                json.dumps(narrow_for_llguidance(spec.json_schema)), overrides=options
            )
        except (ValueError, TypeError, RecursionError) as exc:
            raise LLGuidanceRefused(f"llguidance cannot read the schema: {exc}") from None
    assert spec.pattern is not None
    return LLMatcher.grammar_from_regex(spec.pattern)


def _compile_regex_engine(
    spec: OutputSpec,
    target: GrammarTarget,
    ends: tuple[int, ...],
    whitespace: str,
    timeout: float,
) -> tuple[Grammar, bool]:
    vocab = target.regex_vocabulary(ends)
    if spec.kind == "json":
        from schemas.compiler import RegexOptions, schema_to_regex_for_vocab

        regex = schema_to_regex_for_vocab(
            spec.json_schema, vocab.size, RegexOptions(whitespace=whitespace)
        )
    else:
        assert spec.pattern is not None
        regex = spec.pattern
    grammar, info = compile_regex(regex, vocab, timeout)
    return grammar, info.cached
