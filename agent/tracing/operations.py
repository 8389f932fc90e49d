"""Spans of single operations outside the run's event stream: a RAG search, an `extract`.

Both are context managers that yield a small recorder, so the code they wrap stays a
few lines longer and no more; with no SDK configured they cost a no-op span.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from agent.messages import AssistantMessage, UserMessage
from agent.stats import GenerationStats
from agent.tracing import Tracing
from agent.tracing.content import genai_json
from agent.tracing.metrics import GenAIMetrics
from agent.tracing.run_spans import chat_stats_attrs


@contextmanager
def _span(
    tracing: Tracing, name: str, kind: SpanKind, attributes: dict[str, Any]
) -> Iterator[Span]:
    """A current span that records an escaping exception as ERROR (and re-raises it)."""
    tracer = tracing.tracer()
    with tracer.start_as_current_span(
        name,
        kind=kind,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            yield span
        except BaseException as exc:
            span.set_attribute("error.type", type(exc).__qualname__)
            span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
            raise


class RetrievalRecord:
    def __init__(self, span: Span, started: float) -> None:
        self._span = span
        self._started = started

    def hits(self, count: int, top_score: float | None = None) -> None:
        latency_ms = (time.perf_counter() - self._started) * 1000
        self._span.set_attribute("edge_agent.retrieval.hits", count)
        self._span.set_attribute("edge_agent.retrieval.latency_ms", latency_ms)
        if top_score is not None:
            self._span.set_attribute("edge_agent.retrieval.top_score", top_score)


@contextmanager
def retrieval_span(tracing: Tracing, query: str, k: int) -> Iterator[RetrievalRecord]:
    """`retrieval` for one RAG search: query length, k, then hits and latency."""
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "retrieval",
        "gen_ai.request.top_k": k,
        "edge_agent.retrieval.query_chars": len(query),
    }
    if tracing.content:
        attributes["gen_ai.retrieval.query.text"] = query
    with _span(tracing, "retrieval", SpanKind.INTERNAL, attributes) as span:
        yield RetrievalRecord(span, time.perf_counter())


class ExtractRecord:
    def __init__(self, span: Span, tracing: Tracing, model: str, provider: str) -> None:
        self._span = span
        self._tracing = tracing
        self._model = model
        self._provider = provider
        self._started = time.perf_counter()

    def result(self, stats: GenerationStats, value: Any) -> None:
        provider = stats.engine or self._provider
        self._span.set_attributes(chat_stats_attrs(stats, provider))
        if self._tracing.content:
            output = AssistantMessage(json.dumps(value, ensure_ascii=False, default=str))
            finish = stats.finish_reason
            self._span.set_attribute(
                "gen_ai.output.messages", genai_json([output], finish_reason=finish)
            )
        duration = time.perf_counter() - self._started
        GenAIMetrics(self._tracing.meter()).record_chat(stats, provider, self._model, duration)


@contextmanager
def extract_span(
    tracing: Tracing,
    model: str,
    provider: str,
    max_tokens: int,
    temperature: float,
    text: str,
    output_type: str,
) -> Iterator[ExtractRecord]:
    """`extract {model}`: one structured extraction (a `chat` whose `gen_ai.output.type`
    is json for a schema, text for a regex, grammar or choice)."""
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.output.type": output_type,
        "gen_ai.provider.name": provider,
        "gen_ai.request.model": model,
        "gen_ai.request.max_tokens": max_tokens,
        "gen_ai.request.temperature": temperature,
        "edge_agent.extract.input_chars": len(text),
    }
    content = tracing.content
    if content:
        attributes["gen_ai.input.messages"] = genai_json([UserMessage(text)])
    with _span(tracing, f"extract {model}", SpanKind.CLIENT, attributes) as span:
        yield ExtractRecord(span, tracing, model, provider)


def document_span(
    tracing: Tracing,
    model: str,
    provider: str,
    max_tokens: int,
    result: Any,
) -> None:
    """`extract {model}` for one document of `extract_many` (any number of pieces, maybe
    decoded beside other documents' pieces), recorded when the document is done: it
    starts `result.seconds` before now. `result` is a `DocumentResult`."""
    tracer = tracing.tracer()
    now = time.time_ns()
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.output.type": "json",
        "gen_ai.provider.name": provider,
        "gen_ai.request.model": model,
        "gen_ai.request.max_tokens": max_tokens,
        "gen_ai.usage.input_tokens": result.prompt_tokens,
        "gen_ai.usage.output_tokens": result.generated_tokens,
        "gen_ai.usage.cache_read.input_tokens": result.cached_prompt_tokens,
        "edge_agent.extract.source": result.source,
        "edge_agent.extract.input_chars": len(result.text),
        "edge_agent.extract.chunks": result.chunks,
        "edge_agent.extract.grounded_values": len(result.grounded),
    }
    span = tracer.start_span(
        f"extract {model}",
        kind=SpanKind.CLIENT,
        attributes=attributes,
        start_time=now - int(result.seconds * 1e9),
    )
    if result.error is not None:
        span.set_attribute("error.type", "ExtractionError")
        span.set_status(Status(StatusCode.ERROR, result.error))
    elif tracing.content:
        output = AssistantMessage(json.dumps(result.value, ensure_ascii=False, default=str))
        span.set_attribute("gen_ai.output.messages", genai_json([output]))
    span.end(end_time=now)
