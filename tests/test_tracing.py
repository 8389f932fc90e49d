"""OpenTelemetry spans and metrics of agent runs (agent.tracing), read back through the
SDK's in-memory exporter and reader, with providers passed explicitly (no global state)."""

from __future__ import annotations

import asyncio
import json
from typing import Literal

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from agent import Agent
from agent.engines.scripted import Reply, ScriptedModel
from agent.events import StatsEvent, ToolResultEvent
from agent.extraction import extract_with_stats
from agent.tracing import CAPTURE_ENV, Tracing
from tools import tool


@tool
def weather(city: Literal["Paris", "Oslo"]) -> str:
    """Current weather in a city."""
    return f"{city}: 21 C and sunny"


@tool
def explode(reason: Literal["disk", "net"]) -> str:
    """A tool that always fails."""
    raise RuntimeError(f"{reason} is on fire")


class Traced:
    """An explicit tracer and meter provider, and what they recorded."""

    def __init__(self, capture_content: bool | None = None) -> None:
        self.exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self.tracing = Tracing(provider, MeterProvider(metric_readers=[self.reader]),
                               capture_content)  # fmt: skip

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def named(self, prefix: str) -> list[ReadableSpan]:
        return [s for s in self.spans() if s.name.startswith(prefix)]

    def metric_points(self, name: str) -> list[tuple[dict, int, float]]:
        data = self.reader.get_metrics_data()
        assert data is not None
        points = []
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        points += [
                            (dict(p.attributes), p.count, p.sum) for p in metric.data.data_points
                        ]
        return points


def two_step_agent(traced: Traced, **kwargs) -> Agent:
    model = ScriptedModel(
        [Reply(calls=[("weather", {"city": "Paris"})]), Reply(text="It is sunny in Paris.")],
        name="scripted-lfm",
    )
    return Agent(model, [weather], tracing=traced.tracing, name="forecaster", **kwargs)


def test_a_two_step_run_with_a_tool_call_gives_the_genai_span_tree():
    traced = Traced()
    result = two_step_agent(traced, max_tokens=300).run("Weather in Paris?")
    assert result.stopped_by is None

    (root,) = traced.named("invoke_agent")
    chats = sorted(traced.named("chat "), key=lambda s: s.start_time or 0)
    (tool_span,) = traced.named("execute_tool")
    assert len(traced.spans()) == 4
    assert root.name == "invoke_agent forecaster"
    assert [c.name for c in chats] == ["chat scripted-lfm", "chat scripted-lfm"]
    assert tool_span.name == "execute_tool weather"
    # One trace; chat and tool spans are children of the agent span, which has no parent.
    assert root.parent is None
    assert {s.context.trace_id for s in traced.spans()} == {root.context.trace_id}
    for child in (*chats, tool_span):
        assert child.parent is not None and child.parent.span_id == root.context.span_id
    # The tool ran between the two model steps.
    assert chats[0].end_time <= tool_span.start_time <= tool_span.end_time <= chats[1].end_time

    assert root.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert root.attributes["gen_ai.agent.name"] == "forecaster"
    assert root.attributes["edge_agent.run.steps"] == 2
    assert root.attributes["edge_agent.run.stop_reason"] == "answer"
    assert root.status.status_code == StatusCode.UNSET

    # Token counts equal the run's statistics, step by step and in total.
    step_stats = [e.stats for e in result.of_type(StatsEvent)]
    for span, stats in zip(chats, step_stats, strict=True):
        a = span.attributes
        assert a["gen_ai.operation.name"] == "chat"
        assert a["gen_ai.provider.name"] == "scripted"
        assert a["gen_ai.request.model"] == "scripted-lfm"
        assert a["gen_ai.request.max_tokens"] == 300
        assert a["gen_ai.request.temperature"] == 0.0
        assert a["gen_ai.usage.input_tokens"] == stats.prompt_tokens
        assert a["gen_ai.usage.output_tokens"] == stats.generated_tokens
        assert a["gen_ai.response.finish_reasons"] == ("stop",)
        assert a["edge_agent.ttft_s"] == stats.ttft_s
        assert a["edge_agent.cached_prompt_tokens"] == stats.cached_prompt_tokens
    assert [s.attributes["edge_agent.step"] for s in chats] == [1, 2]
    assert root.attributes["gen_ai.usage.input_tokens"] == result.stats.prompt_tokens
    assert root.attributes["gen_ai.usage.output_tokens"] == result.stats.generated_tokens

    (call,) = result.of_type(ToolResultEvent)
    assert tool_span.attributes["gen_ai.operation.name"] == "execute_tool"
    assert tool_span.attributes["gen_ai.tool.name"] == "weather"
    assert tool_span.attributes["gen_ai.tool.call.id"] == call.call_id
    assert tool_span.status.status_code == StatusCode.UNSET
    assert "error.type" not in tool_span.attributes


def test_token_usage_and_duration_histograms_follow_the_conventions():
    traced = Traced()
    result = two_step_agent(traced).run("Weather in Paris?")
    steps = [e.stats for e in result.of_type(StatsEvent)]
    usage = traced.metric_points("gen_ai.client.token.usage")
    by_type = {p[0]["gen_ai.token.type"]: p for p in usage}
    assert set(by_type) == {"input", "output"}
    assert by_type["input"][0]["gen_ai.request.model"] == "scripted-lfm"
    assert by_type["input"][0]["gen_ai.operation.name"] == "chat"
    assert by_type["input"][1:] == (2, sum(s.prompt_tokens for s in steps))
    assert by_type["output"][1:] == (2, sum(s.generated_tokens for s in steps))
    durations = traced.metric_points("gen_ai.client.operation.duration")
    counts = {p[0]["gen_ai.operation.name"]: p[1] for p in durations}
    assert counts == {"chat": 2, "invoke_agent": 1}


def test_a_failing_tool_gives_an_error_span():
    traced = Traced()
    model = ScriptedModel([Reply(calls=[("explode", {"reason": "disk"})]), Reply(text="Sorry.")])
    result = Agent(model, [explode], tracing=traced.tracing).run("Break it")
    (failed,) = result.of_type(ToolResultEvent)
    assert failed.error is not None
    (span,) = traced.named("execute_tool")
    assert span.name == "execute_tool explode"
    assert span.status.status_code == StatusCode.ERROR
    assert "disk is on fire" in (span.status.description or "")
    assert span.attributes["error.type"] == "tool_error"
    # The run itself recovered and answered.
    (root,) = traced.named("invoke_agent")
    assert root.status.status_code == StatusCode.UNSET


def test_a_refused_tool_is_an_error_span_of_type_refused():
    @tool(requires_approval=True)
    def wipe(target: Literal["cache"]) -> str:
        """Delete things."""
        return "wiped"

    traced = Traced()
    model = ScriptedModel([Reply(calls=[("wipe", {"target": "cache"})]), Reply(text="ok")])
    Agent(model, [wipe], tracing=traced.tracing, approve=lambda call, t: False).run("Wipe")
    (span,) = traced.named("execute_tool")
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes["error.type"] == "refused"


def test_a_failed_run_marks_the_agent_span_error():
    traced = Traced()
    model = ScriptedModel([Reply(text="only one reply")])
    agent = Agent(model, tracing=traced.tracing)
    assert agent.run("first").stopped_by is None
    assert agent.run("second").stopped_by == "error"  # the script has no reply left
    roots = traced.named("invoke_agent")
    assert [r.status.status_code for r in roots] == [StatusCode.UNSET, StatusCode.ERROR]
    assert roots[1].attributes["edge_agent.run.stop_reason"] == "error"
    assert "no reply left" in (roots[1].status.description or "")


CONTENT_KEYS = (
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.system_instructions",
    "gen_ai.tool.call.arguments",
    "gen_ai.tool.call.result",
)


def content_attributes(traced: Traced) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for span in traced.spans():
        for key in CONTENT_KEYS:
            if key in span.attributes:
                found.setdefault(key, []).append(span.name)
    return found


def test_content_is_absent_unless_asked_for(monkeypatch):
    monkeypatch.delenv(CAPTURE_ENV, raising=False)
    traced = Traced()
    two_step_agent(traced).run("Weather in Paris?")
    assert content_attributes(traced) == {}
    everything = json.dumps([json.loads(s.to_json()) for s in traced.spans()])
    assert "Weather in Paris?" not in everything and "sunny" not in everything


def test_content_capture_records_prompt_arguments_and_results():
    traced = Traced(capture_content=True)
    agent = two_step_agent(traced)
    agent.run("Weather in Paris?")
    (root,) = traced.named("invoke_agent")
    (tool_span,) = traced.named("execute_tool")
    chats = sorted(traced.named("chat "), key=lambda s: s.start_time or 0)
    assert json.loads(root.attributes["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "Weather in Paris?"}]}
    ]
    assert json.loads(root.attributes["gen_ai.system_instructions"]) == [
        {"type": "text", "content": agent.system}
    ]
    output = json.loads(root.attributes["gen_ai.output.messages"])
    assert output[0]["parts"][0]["content"] == "It is sunny in Paris."
    assert json.loads(tool_span.attributes["gen_ai.tool.call.arguments"]) == {"city": "Paris"}
    assert tool_span.attributes["gen_ai.tool.call.result"] == "Paris: 21 C and sunny"
    # The second step's input holds the first step's call and the tool's result.
    second_input = json.loads(chats[1].attributes["gen_ai.input.messages"])
    assert [m["role"] for m in second_input] == ["user", "assistant", "tool"]
    assert second_input[1]["parts"][0]["name"] == "weather"
    assert second_input[2]["parts"][0]["response"] == "Paris: 21 C and sunny"


def test_the_environment_variable_turns_content_capture_on(monkeypatch):
    monkeypatch.setenv(CAPTURE_ENV, "true")
    traced = Traced()
    two_step_agent(traced).run("Weather in Paris?")
    assert set(content_attributes(traced)) == set(CONTENT_KEYS)


def test_a_run_without_an_sdk_provider_records_nothing_and_still_answers():
    from opentelemetry.trace import NoOpTracerProvider

    agent = Agent(ScriptedModel(["hello there"]), tracing=Tracing(NoOpTracerProvider()))
    result = agent.run("hi")
    assert result.content == "hello there" and result.stopped_by is None


def test_retrieval_is_a_span_inside_the_run():
    class Hit:
        def __init__(self, n: int) -> None:
            self.path, self.start, self.end = f"doc{n}.md", 0, 10
            self.score, self.text, self.chunk_id = 1.0 / n, f"passage {n}", n

    class Retriever:
        def search(self, query: str, k: int) -> list[Hit]:
            return [Hit(n) for n in range(1, 4)][:k]

    traced = Traced()
    model = ScriptedModel(
        [Reply(calls=[("rag_search", {"query": "solar panels"})]), Reply(text="See [1].")]
    )
    Agent(model, retriever=Retriever(), rag_k=2, tracing=traced.tracing).run("Panels?")
    (root,) = traced.named("invoke_agent")
    (span,) = traced.named("retrieval")
    assert span.parent is not None and span.parent.span_id == root.context.span_id
    assert span.attributes["gen_ai.operation.name"] == "retrieval"
    assert span.attributes["gen_ai.request.top_k"] == 2
    assert span.attributes["edge_agent.retrieval.query_chars"] == len("solar panels")
    assert span.attributes["edge_agent.retrieval.hits"] == 2
    assert span.attributes["edge_agent.retrieval.latency_ms"] >= 0
    assert "gen_ai.retrieval.query.text" not in span.attributes


def test_a_constrained_step_on_the_tiny_model_carries_the_grammar_figures(tiny):
    traced = Traced()
    agent = Agent(tiny, [weather], tool_choice="required", max_steps=1, tracing=traced.tracing)
    result = agent.run("Weather in Oslo?")
    (stats,) = [e.stats for e in result.of_type(StatsEvent)]
    (chat,) = traced.named("chat ")
    a = chat.attributes
    assert a["gen_ai.provider.name"] == "mlx"
    assert a["edge_agent.constrained"] is True
    assert a["edge_agent.grammar.engine"] == stats.grammar_engine != ""
    assert a["edge_agent.grammar.compile_ms"] == stats.compile_ms
    assert a["edge_agent.grammar.forced_token_share"] == stats.forced_fraction > 0
    assert a["edge_agent.prefill_tokens_per_s"] == stats.prefill_tps > 0
    assert a["edge_agent.decode_tokens_per_s"] == stats.decode_tps
    assert a["gen_ai.usage.output_tokens"] == stats.generated_tokens


def test_extract_is_one_span_with_its_statistics(tiny):
    traced = Traced()
    schema = {
        "type": "object",
        "properties": {"city": {"enum": ["Paris", "Oslo"]}},
        "required": ["city"],
        "additionalProperties": False,
    }
    result = extract_with_stats("I live in Oslo.", schema, tiny, tracing=traced.tracing)
    (span,) = traced.spans()
    assert span.name.startswith("extract ")
    assert span.attributes["gen_ai.output.type"] == "json"
    assert span.attributes["gen_ai.usage.output_tokens"] == result.stats.generated_tokens
    assert span.attributes["edge_agent.grammar.engine"] == result.stats.grammar_engine
    assert "gen_ai.input.messages" not in span.attributes


@pytest.mark.parametrize("capture", [False, True])
def test_extract_content_follows_the_capture_setting(tiny, capture):
    traced = Traced(capture_content=capture)
    extract_with_stats("Oslo", {"enum": ["Paris", "Oslo"]}, tiny, tracing=traced.tracing)
    (span,) = traced.spans()
    assert ("gen_ai.input.messages" in span.attributes) is capture


def test_a_consumer_that_walks_away_ends_every_span_and_the_agent_runs_again():
    traced = Traced()
    agent = Agent(ScriptedModel(["one two three four", "again"]), tracing=traced.tracing)

    async def first_event_only() -> None:
        stream = agent.stream("hi")
        async for _event in stream:
            break
        await stream.aclose()

    asyncio.run(first_event_only())
    names = sorted(s.name for s in traced.spans())
    assert names == ["chat scripted", "invoke_agent edge-agent"]
    assert agent.run("hi again").content == "again"
    assert len(traced.named("invoke_agent")) == 2


def test_metrics_are_recorded_with_a_meter_provider_and_no_tracer_provider():
    from opentelemetry.trace import NoOpTracerProvider

    traced = Traced()
    tracing = Tracing(NoOpTracerProvider(), traced.tracing.meter_provider)
    result = two_step_agent(traced).run("Weather in Paris?")  # the recording set-up
    quiet = Agent(
        ScriptedModel([Reply(calls=[("weather", {"city": "Oslo"})]), Reply(text="Sunny.")]),
        [weather],
        tracing=tracing,
    ).run("Weather in Oslo?")
    usage = traced.metric_points("gen_ai.client.token.usage")
    counts = {(p[0]["gen_ai.request.model"], p[0]["gen_ai.token.type"]): p[1] for p in usage}
    assert counts == {  # two steps in each run
        ("scripted-lfm", "input"): 2,
        ("scripted-lfm", "output"): 2,
        ("scripted", "input"): 2,
        ("scripted", "output"): 2,
    }
    outputs = sum(p[2] for p in usage if p[0]["gen_ai.token.type"] == "output")
    assert outputs == result.stats.generated_tokens + quiet.stats.generated_tokens
    assert len(traced.named("invoke_agent")) == 1  # only the recording run made spans
