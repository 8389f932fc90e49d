"""Compiling a request: llguidance first, the regex engine where llguidance cannot serve.

The regex engine (schema -> regex -> outlines-core automaton) is three orders of magnitude
slower to compile, but it covers keywords llguidance refuses (`not`, `uniqueItems`,
dependencies, `if/then/else`, `oneOf` it cannot prove exclusive, lookaround-free
rewrites of patterns, ...) and knows the exact number of tokens an output still needs. So
`engine="auto"` tries llguidance, and turns to the regex engine when llguidance refuses
the request, or when llguidance's plan does not fit `max_tokens` but the exact count
might. The union covers at least what each engine covers alone.

A context-free grammar (kind "cfg", Lark syntax) has one route: llguidance. The regex
engine reads only regular languages, and no sound rewrite of a grammar into a regex
exists in general, so a grammar llguidance refuses is an error, not a fallback.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from agent.constrained.compile import DEFAULT_COMPILE_TIMEOUT, compile_regex
from agent.constrained.deadline import finished_within
from agent.constrained.engine import EngineName, Grammar
from agent.constrained.llg import (
    LLGuidanceRefused,
    LLGuidanceTimeout,
    compile_llguidance,
    refusal_of,
)
from agent.constrained.output_types import OutputSpec
from agent.constrained.target import GrammarTarget
from agent.errors import UserError
from schemas.errors import SchemaCompileError

if TYPE_CHECKING:
    from llguidance._lib import JsonCompileOptions

EngineChoice = Literal["auto", "llguidance", "regex"]
ENGINE_CHOICES: tuple[EngineChoice, ...] = ("auto", "llguidance", "regex")


@dataclass(frozen=True)
class CompiledOutput:
    """A request compiled for one tokenizer, and what it cost."""

    spec: OutputSpec
    grammar: Grammar
    compile_ms: float
    cached: bool
    # Which route served it: "llguidance", "llguidance-rewrite" (the schema without the
    # keywords llguidance refuses), "regex+llguidance", "regex", "llguidance-narrowest".
    route: str = ""

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
    """Compile `spec` for `target`, ending with `end_ids` (the model's EOS by default).

    `engine="auto"` tries, in order, until one serves the request within `timeout`:
    llguidance on the request; llguidance on its sound rewrite without the keywords it
    refuses (`schemas.narrow.rewrite_refused`); the regex compiler's regex, masked by
    llguidance ("regex+llguidance"); the same regex as an outlines-core automaton
    ("regex", today's engine, which also knows exact token counts); llguidance with
    unique arrays narrowed to one item. `engine="llguidance"` stops after the second,
    `engine="regex"` runs only the automaton path.
    """
    if engine not in ENGINE_CHOICES:
        raise UserError(f"engine must be one of {', '.join(ENGINE_CHOICES)}, got {engine!r}")
    ends = tuple(sorted(end_ids if end_ids is not None else target.eos_ids))
    t0 = time.perf_counter()
    deadline = t0 + timeout

    def left() -> float:
        return max(deadline - time.perf_counter(), 0.5)

    if spec.kind == "json" and not spec.checked:
        # An invalid schema is the user's, on any engine.
        _check_within(spec.json_schema, timeout)

    if spec.kind == "cfg":
        return _compile_cfg(spec, target, ends, engine, timeout, t0)
    if engine == "regex":
        sized = _regex_of(spec, target, whitespace, left(), sized=True)
        grammar, cached = _compile_automaton(spec, target, ends, sized, left())
        return CompiledOutput(spec, grammar, _ms(t0), cached, "regex")

    errors: list[SchemaCompileError] = []
    found: tuple[Grammar, bool, str] | None = None
    try:
        found = _compile_llguidance(spec, target, ends, whitespace, left())
    except LLGuidanceRefused as exc:
        if engine == "llguidance":
            raise exc.as_user_error() from None
        errors.append(exc)
    if found is not None and (
        engine == "llguidance" or max_tokens is None or found[0].min_tokens() <= max_tokens
    ):
        return CompiledOutput(spec, found[0], _ms(t0), found[1], found[2])

    # The regex compiler: for what llguidance refused, or for an exact token count.
    regex: str | None = None
    if found is None:  # llguidance builds its lexer lazily: the full regex, in one pass
        try:
            full = _regex_of(spec, target, whitespace, left(), sized=False)
            grammar, cached = compile_llguidance(
                target, _regex_grammar(full), ends, json_output=spec.kind == "json",
                timeout=left(), engine="regex+llguidance", hints=_hints_of(spec),
            )  # fmt: skip
            return CompiledOutput(spec, grammar, _ms(t0), cached, "regex+llguidance")
        except SchemaCompileError as exc:
            errors.append(exc)
    try:
        regex = _regex_of(spec, target, whitespace, left(), sized=True)
    except SchemaCompileError as exc:
        errors.append(exc)
    if regex is not None:
        try:
            automaton, cached = _compile_automaton(spec, target, ends, regex, left())
            if found is None or automaton.min_tokens() < found[0].min_tokens():
                return CompiledOutput(spec, automaton, _ms(t0), cached, "regex")
        except SchemaCompileError as exc:
            errors.append(exc)
    if found is not None:  # the exact count was no better: llguidance stands
        return CompiledOutput(spec, found[0], _ms(t0), found[1], found[2])
    if spec.kind == "json":
        last = _last_resort(spec, target, ends, whitespace, deadline)
        if last is not None:
            return CompiledOutput(spec, last, _ms(t0), False, "llguidance-narrowest")
    raise _most_telling(errors)


def _check_within(schema: object, seconds: float) -> None:
    """`check_schema` within the compile deadline.

    Meta-validation is pure Python and grows with the schema (10,000 properties: about
    4 s here), so it runs on a thread the caller stops waiting for at the deadline. An
    abandoned check runs on to its end, which the schema size limit bounds
    (`agent.limits.MAX_SCHEMA_BYTES`).
    """
    from schemas.compiler import check_schema

    outcome: list[BaseException] = []

    def work() -> None:
        try:
            check_schema(schema)
        except BaseException as exc:  # reported to the caller
            outcome.append(exc)

    if not finished_within(seconds, work, "schema-check"):
        raise SchemaCompileError(
            f"checking the schema took more than {seconds:g} s; simplify it (fewer "
            "properties or alternatives) or raise the compile timeout"
        )
    if outcome:
        raise outcome[0]


def _compile_cfg(
    spec: OutputSpec,
    target: GrammarTarget,
    ends: tuple[int, ...],
    engine: EngineChoice,
    timeout: float,
    t0: float,
) -> CompiledOutput:
    """A Lark grammar, on llguidance only.

    The budget guarantee holds as for any llguidance grammar: compiling finds a plan
    (a concrete way to the end) or refuses the grammar, and decoding never takes a
    token after which no plan fits the remaining budget. A grammar whose only ends lie
    beyond the planner's reach (a rule that can only recurse) is refused up front.
    """
    if engine == "regex":
        raise UserError(
            "a context-free grammar needs the llguidance engine (the regex engine reads "
            "only regular languages)"
        )
    try:
        grammar, cached = compile_llguidance(
            target, _lark_grammar(spec), ends, json_output=False, timeout=timeout
        )
    except LLGuidanceRefused as exc:
        raise exc.as_user_error() from None
    return CompiledOutput(spec, grammar, _ms(t0), cached, "llguidance")


def _most_telling(errors: list[SchemaCompileError]) -> SchemaCompileError:
    """The error to show when no route served a request: the regex compiler names the
    keyword and its path; a bare llguidance refusal is the fallback."""
    for exc in errors:
        if not isinstance(exc, LLGuidanceRefused) and type(exc) is not SchemaCompileError:
            return exc
    for exc in errors:
        if isinstance(exc, LLGuidanceRefused):
            return exc.as_user_error()
    return errors[0] if errors else SchemaCompileError("no grammar engine could compile this")


def _compile_llguidance(
    spec: OutputSpec,
    target: GrammarTarget,
    ends: tuple[int, ...],
    whitespace: str,
    timeout: float,
) -> tuple[Grammar, bool, str]:
    """llguidance on the request, then on its rewrite without the keywords it refuses,
    both within `timeout`."""
    deadline = time.perf_counter() + timeout
    try:
        grammar, cached = compile_llguidance(
            target, _llguidance_grammar(spec, whitespace), ends,
            json_output=spec.kind == "json", timeout=timeout,
        )  # fmt: skip
        return grammar, cached, "llguidance"
    except LLGuidanceRefused as exc:
        if spec.kind != "json" or isinstance(exc, LLGuidanceTimeout):
            raise
        from schemas.narrow import rewrite_refused

        rewritten = rewrite_refused(spec.json_schema)
        if rewritten == spec.json_schema:
            raise
        try:
            grammar, cached = compile_llguidance(
                target, _json_grammar(rewritten, whitespace), ends,
                json_output=True, timeout=max(deadline - time.perf_counter(), 0.5),
            )  # fmt: skip
            return grammar, cached, "llguidance-rewrite"
        except LLGuidanceRefused:
            raise exc from None


def _last_resort(
    spec: OutputSpec,
    target: GrammarTarget,
    ends: tuple[int, ...],
    whitespace: str,
    deadline: float,
) -> Grammar | None:
    """llguidance on the narrowest rewrite (unique arrays of at most one item)."""
    from schemas.narrow import rewrite_refused

    narrowest = rewrite_refused(spec.json_schema, drop_unique=True)
    if narrowest == rewrite_refused(spec.json_schema):
        return None
    try:
        grammar, _ = compile_llguidance(
            target, _json_grammar(narrowest, whitespace), ends,
            json_output=True, timeout=max(deadline - time.perf_counter(), 0.5),
        )  # fmt: skip
    except LLGuidanceRefused:
        return None
    return grammar


def preflight(spec: OutputSpec, whitespace: str = "") -> None:
    """Raise the error `compile_output` would raise for `spec`, without a tokenizer.

    For the CLI, which checks a schema before it loads a model: validity, then whether
    llguidance takes the grammar, else whether the regex engine can express it. A
    regex or a Lark grammar is checked by llguidance alone (both engines parse regexes
    with Rust's regex syntax and refuse the same constructs; a grammar has no other
    engine).
    """
    from llguidance import LLMatcher

    if spec.kind != "json":
        try:
            error = LLMatcher.validate_grammar(_llguidance_grammar(spec, whitespace))
        except (ValueError, TypeError) as exc:
            error = str(exc)
        if error:
            what = "grammar" if spec.kind == "cfg" else "regex"
            first = " ".join(line.strip() for line in error.strip().splitlines())[:300]
            raise SchemaCompileError(f"llguidance cannot read the {what}: {first}")
        return

    from schemas.compiler import check_schema, schema_to_regex
    from schemas.narrow import rewrite_refused

    check_schema(spec.json_schema)

    def llguidance_takes(schema: object) -> bool:
        try:
            return not LLMatcher.validate_grammar(_json_grammar(schema, whitespace))
        except LLGuidanceRefused:
            return False

    if llguidance_takes(spec.json_schema) or llguidance_takes(rewrite_refused(spec.json_schema)):
        return
    try:
        schema_to_regex(spec.json_schema)
    except SchemaCompileError:
        if not llguidance_takes(rewrite_refused(spec.json_schema, drop_unique=True)):
            raise


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000


def _llguidance_grammar(spec: OutputSpec, whitespace: str) -> str:
    from llguidance import LLMatcher

    if spec.kind == "json":
        return _json_grammar(spec.json_schema, whitespace)
    if spec.kind == "cfg":
        return _lark_grammar(spec)
    assert spec.pattern is not None
    return LLMatcher.grammar_from_regex(spec.pattern)


def _lark_grammar(spec: OutputSpec) -> str:
    from llguidance import LLMatcher

    assert spec.grammar is not None
    try:
        return LLMatcher.grammar_from_lark(spec.grammar)
    except (ValueError, TypeError) as exc:
        raise LLGuidanceRefused(f"llguidance cannot read the grammar: {exc}") from None


def _json_grammar(schema: object, whitespace: str) -> str:
    """llguidance's grammar for a JSON Schema, narrowed to sound formats and numbers."""
    from llguidance import LLMatcher

    from schemas.narrow import narrow_for_llguidance

    options: JsonCompileOptions = {"whitespace_flexible": bool(whitespace)}
    if whitespace:
        options["whitespace_pattern"] = whitespace
    try:
        return LLMatcher.grammar_from_json_schema(
            json.dumps(narrow_for_llguidance(schema)), overrides=options
        )
    except RecursionError:
        raise refusal_of("recursion limit exceeded") from None
    except (ValueError, TypeError) as exc:
        if "recursion limit exceeded" in str(exc):
            raise refusal_of(str(exc)) from None
        raise LLGuidanceRefused(f"llguidance cannot read the schema: {exc}") from None


def _hints_of(spec: OutputSpec) -> tuple[bytes, ...] | None:
    """Planner hints for the regex route: the schema's own patterns, not the JSON
    structure the regex spells out (None: read them from the regex itself)."""
    if spec.kind != "json":
        return None
    from agent.constrained.hints import schema_hints

    return schema_hints(spec.json_schema)


def _regex_grammar(regex: str) -> str:
    from llguidance import LLMatcher

    return LLMatcher.grammar_from_regex(regex)


def _regex_of(
    spec: OutputSpec, target: GrammarTarget, whitespace: str, seconds: float, sized: bool
) -> str:
    """The regex compiler's regex for `spec`, within `seconds` (what is left of the
    compile deadline); `sized` narrows it until an automaton over the whole vocabulary
    is affordable (the outlines-core route needs that), or refuses it early."""
    if spec.kind != "json":
        assert spec.pattern is not None
        return spec.pattern
    from schemas.compiler import RegexOptions, schema_to_regex, schema_to_regex_for_vocab

    options = RegexOptions(whitespace=whitespace, max_seconds=seconds)
    if not sized:
        return schema_to_regex(spec.json_schema, options)
    return schema_to_regex_for_vocab(spec.json_schema, target.size, options)


def _compile_automaton(
    spec: OutputSpec,
    target: GrammarTarget,
    ends: tuple[int, ...],
    regex: str,
    timeout: float,
) -> tuple[Grammar, bool]:
    grammar, info = compile_regex(regex, target.regex_vocabulary(ends), timeout)
    return grammar, info.cached
