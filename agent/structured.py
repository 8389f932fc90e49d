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

import agent.limits as limits
from agent.constrained.compile import DEFAULT_COMPILE_TIMEOUT
from agent.constrained.output_types import resolve_output_type
from agent.constrained.select import CompiledOutput, EngineChoice, compile_output
from agent.constrained.target import target_for
from agent.errors import UserError
from agent.sampling import SamplingParams
from agent.stats import GenerationStats
from agent.token_runtime import GenerationResult, Prompt, TextChunk
from agent.token_runtime import TokenRuntime as Model


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


def compile_output_type(
    model: Model,
    output_type: Any,
    *,
    whitespace: str = "",
    compile_timeout: float = DEFAULT_COMPILE_TIMEOUT,
    engine: EngineChoice = "auto",
    max_tokens: int | None = None,
) -> CompiledOutput:
    """Resolve and compile `output_type` for `model` (llguidance first, see `select`)."""
    return compile_output(
        resolve_output_type(output_type),
        target_for(model),
        engine=engine,
        whitespace=whitespace,
        timeout=compile_timeout,
        max_tokens=max_tokens,
    )


def stream_structured(
    model: Model,
    prompt: Prompt,
    output_type: Any,
    *,
    max_tokens: int = 512,
    sampling: SamplingParams | None = None,
    whitespace: str = "",
    compile_timeout: float = DEFAULT_COMPILE_TIMEOUT,
    engine: EngineChoice = "auto",
    should_stop: Callable[[], bool] | None = None,
    lookup: int = 0,
) -> Iterator[TextChunk | StructuredResult]:
    """Stream the constrained text, then one StructuredResult.

    `engine` picks the grammar engine: "auto" (llguidance, the regex engine where
    llguidance refuses the request), "llguidance" or "regex". `lookup` drafts up to
    that many tokens from the prompt per pass (`Model.stream`; extraction copies).
    """
    compiled = compile_output_type(
        model,
        output_type,
        whitespace=whitespace,
        compile_timeout=compile_timeout,
        engine=engine,
        max_tokens=max_tokens,
    )
    grammar = compiled.grammar
    needed = grammar.min_tokens()
    if needed > max_tokens:
        raise BudgetTooSmallError(
            f"the shortest valid output found needs {needed} tokens but max_tokens is "
            f"{max_tokens}; raise max_tokens"
        )
    constraint = grammar.start()
    result: GenerationResult | None = None
    for item in model.stream(
        prompt,
        max_tokens=max_tokens,
        sampling=sampling,
        constraint=constraint,
        should_stop=should_stop,
        lookup=lookup,
    ):
        if isinstance(item, TextChunk):
            yield item
        else:
            result = item
    assert result is not None
    result.stats.compile_ms = compiled.compile_ms
    result.stats.compile_cached = compiled.cached
    result.stats.grammar_engine = compiled.engine
    if not constraint.is_finished():
        raise GenerationIncomplete(
            f"generation stopped before the output was complete ({result.stats.finish_reason})"
        )
    yield StructuredResult(compiled.spec.parse(result.text), result.text, result.stats)


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
EXTRACTION_OTHER = (
    "You extract data from text, using only facts stated in the text. Reply with {request}"
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
    what = f"schema file '{name}'"
    try:
        if path.is_file() and path.stat().st_size > limits.MAX_SCHEMA_BYTES:
            # Refused from its size, before a 50 MB file is read or parsed.
            raise limits.too_large(
                what, path.stat().st_size, limits.MAX_SCHEMA_BYTES, "simplify the schema"
            )
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read schema file '{name}': {exc}") from None
    try:
        return limits.loads(
            text,
            what,
            max_bytes=limits.MAX_SCHEMA_BYTES,
            max_depth=limits.MAX_SCHEMA_DEPTH,
            fix="flatten it (or use $defs and $ref)",
        )
    except json.JSONDecodeError as exc:
        raise UserError(
            f"schema file '{name}' is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None


def resolve_schema_early(schema: Any) -> None:
    """Raise the output type's error (invalid, unsupported, unsatisfiable, a regex or
    grammar llguidance cannot read) without a model.

    The CLI calls this before loading a model so that a bad schema costs milliseconds,
    not a model load.
    """
    from agent.constrained.select import preflight

    preflight(resolve_output_type(schema))


def extraction_messages(text: str, output_type: Any) -> list[dict[str, str]]:
    """The extraction prompt: the system turn names what to reply with."""
    spec = resolve_output_type(output_type)
    if spec.kind == "json":
        system = EXTRACTION_SYSTEM.format(
            schema=json.dumps(spec.json_schema, separators=(",", ":"))
        )
    else:
        system = EXTRACTION_OTHER.format(request=spec.describe())
    return [{"role": "system", "content": system}, {"role": "user", "content": text}]


__all__: Sequence[str] = [
    "BudgetTooSmallError",
    "StructuredResult",
    "generate_structured",
    "stream_structured",
]
