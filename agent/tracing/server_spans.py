"""The span of one `serve` chat completion, continuing the client's W3C trace.

A client that sends `traceparent` (the OpenAI SDK under an instrumented program, or any
OpenTelemetry HTTP client) sees the server's `chat {model}` span as a child of its own
call: one trace from the script to the model's token rates.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry import propagate
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from agent.messages import AssistantMessage, Message
from agent.stats import GenerationStats
from agent.tracing import Tracing
from agent.tracing.content import genai_json
from agent.tracing.metrics import GenAIMetrics
from agent.tracing.run_spans import chat_stats_attrs


class CompletionSpan:
    """Started when the generation starts (dated from the request's arrival), ended by
    `finish` whatever happened."""

    def __init__(
        self,
        tracing: Tracing,
        headers: Mapping[str, str],
        *,
        model: str,
        provider: str,
        max_tokens: int,
        temperature: float,
        messages: Sequence[Message],
        arrived_ns: int,
    ) -> None:
        self.tracing = tracing
        self.model = model
        self.provider = provider
        self.arrived_ns = arrived_ns
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": provider,
            "gen_ai.request.model": model,
            "gen_ai.request.max_tokens": max_tokens,
            "gen_ai.request.temperature": temperature,
        }
        if tracing.content:
            attributes["gen_ai.input.messages"] = genai_json(messages)
        self.span: Span = tracing.tracer().start_span(
            f"chat {model}",
            context=propagate.extract(dict(headers)),
            kind=SpanKind.SERVER,
            attributes=attributes,
            start_time=arrived_ns,
        )

    def finish(
        self,
        status: str,
        stats: GenerationStats | None,
        *,
        queue_wait_s: float = 0.0,
        content: str | None = None,
        error: BaseException | None = None,
    ) -> None:
        span = self.span
        span.set_attribute("edge_agent.queue_wait_s", queue_wait_s)
        span.set_attribute("edge_agent.outcome", status)
        if stats is not None:
            span.set_attributes(chat_stats_attrs(stats, stats.engine or self.provider))
        if self.tracing.content and content is not None:
            span.set_attribute("gen_ai.output.messages", genai_json([AssistantMessage(content)]))
        if error is not None:
            span.set_attribute("error.type", type(error).__qualname__)
            span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
        end = time.time_ns()
        span.end(end_time=end)
        if stats is not None:
            GenAIMetrics(self.tracing.meter()).record_chat(
                stats, stats.engine or self.provider, self.model, (end - self.arrived_ns) / 1e9
            )
