"""Extraction: text -> a value of a schema, on any engine.

A local model decodes under the schema's grammar (`structured.stream_structured`); an
engine without a grammar (a remote server) is asked for `response_format: json_schema`
and its answer checked by the agent loop, which asks again once. That dispatch needs
the engine seam and the loop, so it sits above both, not in `structured`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from agent.constrained.compile import DEFAULT_COMPILE_TIMEOUT
from agent.constrained.output_types import resolve_output_type
from agent.errors import UserError
from agent.prompt_lookup import EXTRACTION_LOOKUP
from agent.sampling import SamplingParams
from agent.structured import (
    StructuredResult,
    extraction_messages,
    load_schema,
    stream_structured,
)
from agent.token_runtime import TextChunk
from agent.tracing import Tracing
from agent.tracing.operations import extract_span


def extract(
    text: str,
    schema: Any,
    model: Any = "tiny",
    *,
    max_tokens: int = 512,
    sampling: SamplingParams | None = None,
    compile_timeout: float = DEFAULT_COMPILE_TIMEOUT,
    lookup: int = EXTRACTION_LOOKUP,
) -> Any:
    """Extract `schema` from `text`: a dict (JSON Schema), an instance (pydantic model),
    or the text itself (a regex, a grammar, choices).

    `schema` may be a JSON Schema dict, the name of a schema shipped in `schemas/`
    (contact, invoice, event, product_review), a JSON file path, or any output type of
    `agent.constrained.output_types`: a pydantic model class, a dataclass, `Literal`,
    `Regex(...)`, `CFG(...)`, a list of choices, and Outlines' own types.

    `lookup`: a local MLX model feeds up to that many tokens copied from the text with
    each sampled one and keeps those it would have chosen anyway (`agent.prompt_lookup`):
    the same output in fewer forward passes; 0 turns it off.
    """
    return extract_with_stats(
        text,
        schema,
        model,
        max_tokens=max_tokens,
        sampling=sampling,
        compile_timeout=compile_timeout,
        lookup=lookup,
    ).value


def extract_with_stats(
    text: str,
    schema: Any,
    model: Any = "tiny",
    *,
    max_tokens: int = 512,
    sampling: SamplingParams | None = None,
    compile_timeout: float = DEFAULT_COMPILE_TIMEOUT,
    on_chunk: Callable[[TextChunk], None] | None = None,
    tracing: Tracing | None = None,
    lookup: int = EXTRACTION_LOOKUP,
) -> StructuredResult:
    """`extract` with the statistics. `model` is a spec, a loaded `Model` or any
    `ChatModel`: a local model decodes under the schema's grammar; a server is asked
    for `response_format: json_schema` and its answer validated (and asked again once
    when it does not follow the schema). The extraction is one `extract {model}` span
    (agent.tracing; `tracing` None: the global providers)."""
    from agent.engines import as_chat_model

    schema = load_schema(schema)
    engine = as_chat_model(model)
    tracing = tracing or Tracing()
    temperature = (sampling or engine.default_sampling).temperature
    kind = resolve_output_type(schema).kind
    output_type = "json" if kind == "json" else "text"
    with extract_span(
        tracing, engine.name, engine.provider, max_tokens, temperature, text, output_type
    ) as record:
        result = _extract(
            engine, text, schema, max_tokens, sampling, compile_timeout, on_chunk, tracing,
            lookup,
        )  # fmt: skip
        record.result(result.stats, result.value)
    return result


def _extract(
    engine: Any,
    text: str,
    schema: Any,
    max_tokens: int,
    sampling: SamplingParams | None,
    compile_timeout: float,
    on_chunk: Callable[[TextChunk], None] | None,
    tracing: Tracing,
    lookup: int,
) -> StructuredResult:
    from agent.engines.local import LocalChatModel

    if not isinstance(engine, LocalChatModel):
        return _extract_remote(engine, text, schema, max_tokens, sampling, compile_timeout, tracing)
    result = None
    for item in stream_structured(
        engine.model,
        extraction_messages(text, schema),
        schema,
        max_tokens=max_tokens,
        sampling=sampling,
        compile_timeout=compile_timeout,
        lookup=lookup,
    ):
        if isinstance(item, StructuredResult):
            result = item
        elif on_chunk is not None:
            on_chunk(item)
    assert result is not None
    return result


def _extract_remote(
    engine: Any,
    text: str,
    schema: Any,
    max_tokens: int,
    sampling: SamplingParams | None,
    compile_timeout: float,
    tracing: Tracing,
) -> StructuredResult:
    """Extraction through an engine without a grammar: the Agent's answer check and
    one retry are exactly what a server that may ignore `response_format` needs."""
    from agent.agent import Agent
    from agent.events import StatsEvent

    messages = extraction_messages(text, schema)
    agent = Agent(
        engine,
        [],
        system=messages[0]["content"],
        raw_system=True,
        response_format=schema,
        max_steps=2,
        max_tokens=max_tokens,
        sampling=sampling,
        compile_timeout=compile_timeout,
        name="extract",
        tracing=tracing,
    )
    run = agent.run(text)
    if run.stopped_by is not None:
        raise UserError(f"the model gave no valid answer: {run.final.reason}")
    stats = run.of_type(StatsEvent)[-1].stats
    return StructuredResult(run.output, json.dumps(run.output, ensure_ascii=False), stats)
