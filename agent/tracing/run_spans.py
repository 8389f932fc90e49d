"""Spans of one agent run, built from its event stream.

The agent loop already says everything a trace needs in its typed events: a step's
text, its `StatsEvent` (tokens, TTFT, rates, grammar), each tool call and result (with
its duration), the final stop reason. So the instrumentation is this one wrapper around
`Agent.stream`, not calls sprinkled through the loop:

    invoke_agent {agent}          the run
    ├── chat {model}              each model step (from its first event to its stats)
    ├── execute_tool {tool}       each call (from the call event, for its duration)
    └── retrieval {index}         each RAG search (agent.rag, run inside a tool)

While the loop runs, the agent span is the current context (attached around each step
of the wrapped generator only, never across a `yield` to the consumer), so spans made
deeper down (retrieval) become its children.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field, replace
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from agent.events import (
    ErrorEvent,
    Event,
    FinalEvent,
    ReasoningDelta,
    StatsEvent,
    TextDelta,
    ToolCallEvent,
    ToolResultEvent,
)
from agent.messages import AssistantMessage, Message, ToolCall, ToolMessage, UserMessage
from agent.stats import GenerationStats
from agent.tracing import Tracing
from agent.tracing.content import genai_json
from agent.tracing.metrics import GenAIMetrics

ERROR_STOP = "error"  # agent.guards.ERROR


@dataclass(frozen=True)
class RunInfo:
    """What the trace says about a run besides its events."""

    agent_name: str
    model: str
    provider: str
    max_tokens: int
    temperature: float
    top_p: float
    seed: int | None
    system: str
    prompt: str


@dataclass
class _Tool:
    span: Span
    start_ns: int


@dataclass
class _RunState:
    """The spans still open, and (with content capture) the conversation so far."""

    chat: Span | None = None
    chat_step: int = 0
    chat_start_ns: int = 0
    next_step_ns: int = 0
    text: list[str] = field(default_factory=list)
    tools: dict[str, _Tool] = field(default_factory=dict)
    conversation: list[Message] = field(default_factory=list)


async def trace_run(
    events: AsyncGenerator[Event, None], tracing: Tracing, info: RunInfo
) -> AsyncGenerator[Event, None]:
    """`events` unchanged, with the run's spans and metrics recorded on the way. Closing
    this generator closes `events` at once (the loop's own clean-up runs then)."""
    tracer = tracing.tracer()
    root = tracer.start_span(
        f"invoke_agent {info.agent_name}", kind=SpanKind.INTERNAL, attributes=_agent_attrs(info)
    )
    if not root.is_recording():  # no SDK, or sampled out: the events straight on
        root.end()
        try:
            async for event in _metrics_only(events, GenAIMetrics(tracing.meter()), info):
                yield event
        finally:
            await events.aclose()
        return
    run = _RunTracer(tracer, tracing, info, root)
    root_context = trace.set_span_in_context(root)
    try:
        while True:
            token = otel_context.attach(root_context)
            try:
                event = await anext(events)
            except StopAsyncIteration:
                break
            except BaseException as exc:
                run.abort(exc)
                raise
            finally:
                otel_context.detach(token)
            run.on(event)
            yield event
    finally:
        await events.aclose()
        run.close()


async def _metrics_only(
    events: AsyncGenerator[Event, None], metrics: GenAIMetrics, info: RunInfo
) -> AsyncGenerator[Event, None]:
    """No spans, but the histograms (a meter provider may be set without a tracer
    provider); durations are the steps' and the run's own timings."""
    async for event in events:
        if isinstance(event, StatsEvent):
            step = event.stats
            metrics.record_chat(step, step.engine or info.provider, info.model, step.total_s)
        elif isinstance(event, FinalEvent):
            total_s = event.stats.total_s
            metrics.record_agent(info.provider, info.model, total_s, event.stopped_by)
        yield event


class _RunTracer:
    def __init__(self, tracer: Any, tracing: Tracing, info: RunInfo, root: Span) -> None:
        self.tracer = tracer
        self.info = info
        self.root = root
        self.content = tracing.content
        self.metrics = GenAIMetrics(tracing.meter())
        self.started_ns = time.time_ns()
        self.state = _RunState(next_step_ns=self.started_ns)
        self.parent = trace.set_span_in_context(root)
        if self.content:
            if info.system:
                root.set_attribute("gen_ai.system_instructions", _parts_json(info.system))
            user = UserMessage(info.prompt)
            self.state.conversation.append(user)
            root.set_attribute("gen_ai.input.messages", genai_json([user]))

    # ------------------------------------------------------------ events
    def on(self, event: Event) -> None:
        if isinstance(event, (TextDelta, ReasoningDelta)):
            self._chat_for(event.step)
            if isinstance(event, TextDelta) and self.content:
                self.state.text.append(event.text)
        elif isinstance(event, StatsEvent):
            self._end_chat(event.step, event.stats)
        elif isinstance(event, ToolCallEvent):
            self._start_tool(event)
        elif isinstance(event, ToolResultEvent):
            self._end_tool(event)
        elif isinstance(event, ErrorEvent):
            if self.state.chat is not None:
                self.state.chat.set_status(Status(StatusCode.ERROR, event.message))
                self.state.chat.set_attribute("error.type", "run_error")
                self.state.chat.end()
                self.state.chat = None
        elif isinstance(event, FinalEvent):
            self._final(event)

    def abort(self, exc: BaseException) -> None:
        """The wrapped stream raised (a bug, or the consumer's cancellation)."""
        for span in (self.state.chat, *(t.span for t in self.state.tools.values())):
            if span is not None:
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                span.end()
        self.state.chat = None
        self.state.tools.clear()
        if isinstance(exc, Exception):
            self.root.record_exception(exc)
        self.root.set_attribute("error.type", type(exc).__qualname__)
        self.root.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))

    def close(self) -> None:
        """End whatever is still open (a consumer that walked away mid-run)."""
        if self.state.chat is not None:
            self.state.chat.end()
            self.state.chat = None
        for tool in self.state.tools.values():
            tool.span.end()
        self.state.tools.clear()
        if self.root.is_recording():
            self.root.end()

    # ------------------------------------------------------------ model steps
    def _chat_for(self, step: int) -> Span:
        state = self.state
        if state.chat is not None and state.chat_step == step:
            return state.chat
        if state.chat is not None:  # a step that ended without stats (never expected)
            state.chat.end()
        info = self.info
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": info.provider,
            "gen_ai.request.model": info.model,
            "gen_ai.request.max_tokens": info.max_tokens,
            "gen_ai.request.temperature": info.temperature,
            "gen_ai.request.top_p": info.top_p,
            "edge_agent.step": step,
        }
        if info.seed is not None:
            attributes["gen_ai.request.seed"] = info.seed
        if self.content:
            attributes["gen_ai.input.messages"] = genai_json(state.conversation)
        state.chat_start_ns = state.next_step_ns
        state.chat = self.tracer.start_span(
            f"chat {info.model}",
            context=self.parent,
            kind=SpanKind.CLIENT,
            attributes=attributes,
            start_time=state.chat_start_ns,
        )
        state.chat_step = step
        state.text = []
        return state.chat

    def _end_chat(self, step: int, stats: GenerationStats) -> None:
        span = self._chat_for(step)
        provider = stats.engine or self.info.provider
        span.set_attributes(chat_stats_attrs(stats, provider))
        if self.content:
            output = AssistantMessage("".join(self.state.text).strip())
            finish = stats.finish_reason
            span.set_attribute("gen_ai.output.messages", genai_json([output], finish_reason=finish))
            self.state.conversation.append(output)
        end_ns = time.time_ns()
        span.end(end_time=end_ns)
        self.state.chat = None
        self.state.next_step_ns = end_ns
        self.metrics.record_chat(
            stats, provider, self.info.model, (end_ns - self.state.chat_start_ns) / 1e9
        )

    # ------------------------------------------------------------ tools
    def _start_tool(self, event: ToolCallEvent) -> None:
        start = time.time_ns()
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": event.name,
            "gen_ai.tool.call.id": event.call_id,
            "gen_ai.tool.type": "function",
            "edge_agent.step": event.step,
        }
        if self.content:
            arguments = json.dumps(event.arguments, ensure_ascii=False, default=str)
            attributes["gen_ai.tool.call.arguments"] = arguments
            self._add_call(ToolCall(event.call_id, event.name, event.arguments))
        span = self.tracer.start_span(
            f"execute_tool {event.name}",
            context=self.parent,
            kind=SpanKind.INTERNAL,
            attributes=attributes,
            start_time=start,
        )
        self.state.tools[event.call_id] = _Tool(span, start)

    def _add_call(self, call: ToolCall) -> None:
        """The step's calls are reported after its output: they join its message."""
        conversation = self.state.conversation
        if conversation and isinstance(conversation[-1], AssistantMessage):
            last = conversation[-1]
            conversation[-1] = replace(last, tool_calls=(*last.tool_calls, call))

    def _end_tool(self, event: ToolResultEvent) -> None:
        tool = self.state.tools.pop(event.call_id, None)
        now = time.time_ns()
        if tool is None:
            return
        span = tool.span
        if self.content:
            span.set_attribute("gen_ai.tool.call.result", event.content)
            self.state.conversation.append(
                ToolMessage(event.call_id, event.content, event.name, event.error)
            )
        if event.error is not None:
            span.set_attribute("error.type", tool_error_type(event.error))
            span.set_status(Status(StatusCode.ERROR, event.error))
        end = min(now, tool.start_ns + int(event.duration_s * 1e9)) if event.duration_s else now
        span.end(end_time=max(end, tool.start_ns))
        self.state.next_step_ns = now

    # ------------------------------------------------------------ the end
    def _final(self, event: FinalEvent) -> None:
        root, stats = self.root, event.stats
        for tool in self.state.tools.values():  # calls a guard stopped before they ran
            tool.span.set_attribute("error.type", "refused")
            tool.span.set_status(Status(StatusCode.ERROR, event.reason or "not run"))
            tool.span.end()
        self.state.tools.clear()
        root.set_attributes(
            {
                "edge_agent.run.steps": stats.steps,
                "edge_agent.run.tool_calls": stats.tool_calls,
                "edge_agent.run.stop_reason": event.stopped_by or "answer",
                "gen_ai.usage.input_tokens": stats.prompt_tokens,
                "gen_ai.usage.output_tokens": stats.generated_tokens,
                "gen_ai.usage.cache_read.input_tokens": stats.cached_prompt_tokens,
                "edge_agent.cached_prompt_tokens": stats.cached_prompt_tokens,
                "edge_agent.ttft_s": stats.ttft_s,
            }
        )
        if event.session_id:
            root.set_attribute("gen_ai.conversation.id", event.session_id)
        if event.reason:
            root.set_attribute("edge_agent.run.stop_message", event.reason)
        if self.content:
            root.set_attribute(
                "gen_ai.output.messages", genai_json([AssistantMessage(event.content)])
            )
        if event.stopped_by == ERROR_STOP:
            root.set_attribute("error.type", "run_error")
            root.set_status(Status(StatusCode.ERROR, event.reason or "the run failed"))
        end = time.time_ns()
        root.end(end_time=end)
        self.metrics.record_agent(
            self.info.provider, self.info.model, (end - self.started_ns) / 1e9, event.stopped_by
        )


def _agent_attrs(info: RunInfo) -> dict[str, Any]:
    return {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": info.agent_name,
        "gen_ai.provider.name": info.provider,
        "gen_ai.request.model": info.model,
        "gen_ai.request.max_tokens": info.max_tokens,
        "gen_ai.request.temperature": info.temperature,
    }


def chat_stats_attrs(stats: GenerationStats, provider: str) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "gen_ai.provider.name": provider,
        "gen_ai.usage.input_tokens": stats.prompt_tokens,
        "gen_ai.usage.output_tokens": stats.generated_tokens,
        "gen_ai.usage.cache_read.input_tokens": stats.cached_prompt_tokens,
        "gen_ai.response.finish_reasons": [stats.finish_reason or "unknown"],
        "edge_agent.cached_prompt_tokens": stats.cached_prompt_tokens,
        "edge_agent.ttft_s": stats.ttft_s,
        "edge_agent.prefill_tokens_per_s": stats.prefill_tps,
        "edge_agent.decode_tokens_per_s": stats.decode_tps,
        "edge_agent.peak_memory_bytes": stats.peak_memory_bytes,
        "edge_agent.constrained": stats.constrained,
    }
    if stats.constrained:
        attributes.update(
            {
                "edge_agent.grammar.engine": stats.grammar_engine,
                "edge_agent.grammar.compile_ms": stats.compile_ms,
                "edge_agent.grammar.compile_cached": stats.compile_cached,
                "edge_agent.grammar.mask_us_per_token": stats.mask_us_per_token,
                "edge_agent.grammar.forced_tokens": stats.forced_tokens,
                "edge_agent.grammar.forced_token_share": stats.forced_fraction,
            }
        )
    return attributes


def tool_error_type(message: str) -> str:
    """A low-cardinality `error.type` for a failed call (the message goes in the status)."""
    lowered = message.lower()
    if "denied by the user" in lowered or "requires approval" in lowered:
        return "refused"
    if "timed out" in lowered:
        return "timeout"
    if lowered.startswith(("unknown tool", "invalid arguments", "arguments of")):
        return "invalid_call"
    return "tool_error"


def _parts_json(text: str) -> str:
    return json.dumps([{"type": "text", "content": text}], ensure_ascii=False)
