"""Structured generation: a prompt plus an output type -> a parsed, valid value.

text/messages -> prompt -> grammar (compiled, cached) -> constrained decoding -> parse.
The result always matches the grammar: the grammar is checked to fit in `max_tokens`
before anything is generated, and decoding only offers tokens from which the output
can still be completed within the remaining budget.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.constrained.compile import DEFAULT_COMPILE_TIMEOUT, compile_regex
from agent.constrained.constraint import GrammarConstraint
from agent.constrained.grammar import CompiledGrammar
from agent.constrained.output_types import OutputSpec, resolve_output_type
from agent.constrained.vocabulary import GrammarVocabulary
from agent.errors import UserError
from agent.runtime import GenerationResult, Model, Prompt, TextChunk
from agent.sampling import SamplingParams
from agent.stats import GenerationStats
from schemas.compiler import RegexOptions


class BudgetTooSmallError(UserError):
    """The shortest valid output does not fit in max_tokens."""


class GenerationIncomplete(UserError):
    """Generation stopped before the output was complete (cancelled)."""


@dataclass
class StructuredResult:
    """The parsed value, the exact text it came from, and the generation stats."""

    value: Any
    text: str
    stats: GenerationStats


def grammar_vocabulary(model: Model) -> GrammarVocabulary:
    vocab = getattr(model, "_grammar_vocabulary", None)
    if vocab is None:
        vocab = GrammarVocabulary.from_model_vocabulary(model.vocabulary, model.eos_token_ids)
        model._grammar_vocabulary = vocab  # type: ignore[attr-defined]
    return vocab


def compile_output_type(
    model: Model,
    output_type: Any,
    *,
    whitespace: str = "",
    compile_timeout: float = DEFAULT_COMPILE_TIMEOUT,
) -> tuple[OutputSpec, CompiledGrammar, float, bool]:
    """Resolve and compile `output_type` for `model`: (spec, grammar, ms, cached)."""
    import time

    t0 = time.perf_counter()
    vocab = grammar_vocabulary(model)
    spec = resolve_output_type(output_type, vocab.size, RegexOptions(whitespace=whitespace))
    grammar, info = compile_regex(spec.regex, vocab, compile_timeout)
    return spec, grammar, (time.perf_counter() - t0) * 1000, info.cached


def stream_structured(
    model: Model,
    prompt: Prompt,
    output_type: Any,
    *,
    max_tokens: int = 512,
    sampling: SamplingParams | None = None,
    whitespace: str = "",
    compile_timeout: float = DEFAULT_COMPILE_TIMEOUT,
    should_stop: Callable[[], bool] | None = None,
) -> Iterator[TextChunk | StructuredResult]:
    """Stream the constrained text, then one StructuredResult."""
    spec, grammar, compile_ms, cached = compile_output_type(
        model, output_type, whitespace=whitespace, compile_timeout=compile_timeout
    )
    needed = grammar.min_tokens()
    if needed > max_tokens:
        bound = "" if grammar.automaton.exact else "at most "
        raise BudgetTooSmallError(
            f"the shortest valid output needs {bound}{needed} tokens but max_tokens is "
            f"{max_tokens}; raise max_tokens"
        )
    constraint = GrammarConstraint(grammar)
    result: GenerationResult | None = None
    for item in model.stream(
        prompt,
        max_tokens=max_tokens,
        sampling=sampling,
        constraint=constraint,
        should_stop=should_stop,
    ):
        if isinstance(item, TextChunk):
            yield item
        else:
            result = item
    assert result is not None
    result.stats.compile_ms = compile_ms
    result.stats.compile_cached = cached
    if not constraint.is_finished():
        raise GenerationIncomplete(
            f"generation stopped before the output was complete ({result.stats.finish_reason})"
        )
    yield StructuredResult(spec.parse(result.text), result.text, result.stats)


def generate_structured(model: Model, prompt: Prompt, output_type: Any, **kwargs: Any):
    """Like `stream_structured`, returning only the StructuredResult."""
    result = None
    for item in stream_structured(model, prompt, output_type, **kwargs):
        if isinstance(item, StructuredResult):
            result = item
    assert result is not None
    return result


# ---------------------------------------------------------------------- extraction
EXTRACTION_SYSTEM = (
    "You extract structured data from text. Reply with one JSON value that follows this "
    "JSON Schema, using only facts stated in the text:\n{schema}"
)


def load_schema(spec: Any) -> Any:
    """A schema from a dict, a pydantic class, a shipped name or a JSON file path."""
    if not isinstance(spec, (str, Path)):
        return spec
    from schemas import shipped_schema, shipped_schema_names

    name = str(spec)
    if name in shipped_schema_names():
        return shipped_schema(name)
    path = Path(name).expanduser()
    if not path.exists():
        raise UserError(
            f"schema '{name}' is neither a file nor a shipped schema "
            f"({', '.join(shipped_schema_names())})"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read schema file '{name}': {exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(
            f"schema file '{name}' is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None


def resolve_schema_early(schema: Any) -> None:
    """Raise the schema's error (invalid, unsupported, unsatisfiable) without a model.

    The CLI calls this before loading a model so that a bad schema costs milliseconds,
    not a model load.
    """
    from schemas.compiler import schema_to_regex

    if isinstance(schema, (dict, bool)):
        schema_to_regex(schema)


def extraction_messages(text: str, schema: Any) -> list[dict[str, str]]:
    schema_json = schema if isinstance(schema, (dict, bool)) else _schema_of(schema)
    return [
        {
            "role": "system",
            "content": EXTRACTION_SYSTEM.format(
                schema=json.dumps(schema_json, separators=(",", ":"))
            ),
        },
        {"role": "user", "content": text},
    ]


def _schema_of(output_type: Any) -> Any:
    from pydantic import BaseModel, TypeAdapter

    if isinstance(output_type, type) and issubclass(output_type, BaseModel):
        return output_type.model_json_schema()
    return TypeAdapter(output_type).json_schema()


def extract(
    text: str,
    schema: Any,
    model: Model | str = "tiny",
    *,
    max_tokens: int = 512,
    sampling: SamplingParams | None = None,
    compile_timeout: float = DEFAULT_COMPILE_TIMEOUT,
) -> Any:
    """Extract `schema` from `text`: a dict (JSON Schema) or an instance (pydantic model).

    `schema` may be a JSON Schema dict, a pydantic model class, the name of a schema
    shipped in `schemas/` (contact, invoice, event, product_review) or a JSON file path.
    """
    return extract_with_stats(
        text,
        schema,
        model,
        max_tokens=max_tokens,
        sampling=sampling,
        compile_timeout=compile_timeout,
    ).value


def extract_with_stats(
    text: str,
    schema: Any,
    model: Model | str = "tiny",
    *,
    max_tokens: int = 512,
    sampling: SamplingParams | None = None,
    compile_timeout: float = DEFAULT_COMPILE_TIMEOUT,
    on_chunk: Callable[[TextChunk], None] | None = None,
) -> StructuredResult:
    from agent.loader import load_model

    schema = load_schema(schema)
    loaded = load_model(model, reuse=True) if isinstance(model, str) else model
    result = None
    for item in stream_structured(
        loaded,
        extraction_messages(text, schema),
        schema,
        max_tokens=max_tokens,
        sampling=sampling,
        compile_timeout=compile_timeout,
    ):
        if isinstance(item, StructuredResult):
            result = item
        elif on_chunk is not None:
            on_chunk(item)
    assert result is not None
    return result


__all__: Sequence[str] = [
    "BudgetTooSmallError",
    "StructuredResult",
    "extract",
    "extract_with_stats",
    "generate_structured",
    "stream_structured",
]
