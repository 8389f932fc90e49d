"""`--trace FILE` on the CLI, and `serve` continuing a client's W3C trace."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import openai
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from agent.cli.main import main
from agent.engines.scripted import ScriptedModel
from agent.server import ServerConfig
from agent.server.serve import serve_in_background
from agent.tracing import CAPTURE_ENV, Tracing

ROOT = Path(__file__).resolve().parents[1]

TOOLS = """
    from typing import Literal

    from tools import tool

    @tool
    def explode(part: Literal["x"]) -> str:
        \"\"\"Always fails.\"\"\"
        raise ValueError("the flux capacitor broke")
"""


def read_trace(path: Path) -> list[dict]:
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines, "the trace file is empty"
    return [json.loads(line) for line in lines]


def test_run_trace_writes_one_span_a_line_with_the_run_tree(
    data_dir, tmp_path, capsys, monkeypatch
):
    monkeypatch.delenv(CAPTURE_ENV, raising=False)
    tools = tmp_path / "my_tools.py"
    tools.write_text(textwrap.dedent(TOOLS))
    trace = tmp_path / "run.jsonl"
    code = main(
        ["run", "Break it", "--model", "tiny", "--json", "--seed", "0",
         "--tools-module", str(tools), "--tool-choice", "explode", "--max-steps", "2",
         "--max-tokens", "48", "--trace", str(trace)]
    )  # fmt: skip
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code in (0, 3)
    raw = trace.read_text(encoding="utf-8")
    assert all(line.startswith("{") and line.endswith("}") for line in raw.splitlines())
    spans = read_trace(trace)
    for span in spans:
        assert {"name", "context", "parent_id", "attributes", "status"} <= set(span)
    (root,) = [s for s in spans if s["name"].startswith("invoke_agent")]
    chats = [s for s in spans if s["name"].startswith("chat ")]
    tools_spans = [s for s in spans if s["name"] == "execute_tool explode"]
    assert root["parent_id"] is None
    trace_id = root["context"]["trace_id"]
    for child in (*chats, *tools_spans):
        assert child["context"]["trace_id"] == trace_id
        assert child["parent_id"] == root["context"]["span_id"]

    stats = [e for e in events if e["type"] == "stats"]
    assert len(chats) == len(stats) >= 1
    chats.sort(key=lambda s: s["attributes"]["edge_agent.step"])
    for span, step in zip(chats, stats, strict=True):
        assert span["name"] == "chat tiny"
        assert span["attributes"]["gen_ai.provider.name"] == "mlx"
        assert span["attributes"]["gen_ai.usage.input_tokens"] == step["prompt_tokens"]
        assert span["attributes"]["gen_ai.usage.output_tokens"] == step["generated_tokens"]
    final = events[-1]
    assert root["attributes"]["edge_agent.run.steps"] == final["stats"]["steps"]
    assert root["attributes"]["gen_ai.usage.output_tokens"] == final["stats"]["generated_tokens"]

    # The forced first step called the failing tool: an ERROR span.
    assert tools_spans
    assert tools_spans[0]["status"]["status_code"] == "ERROR"
    assert "flux capacitor" in tools_spans[0]["status"]["description"]
    assert tools_spans[0]["attributes"]["error.type"] == "tool_error"
    # No --trace-content: neither the prompt nor the tool's error text as an attribute.
    assert "Break it" not in raw
    assert all("gen_ai.tool.call.result" not in s["attributes"] for s in spans)


def test_trace_content_records_the_prompt(data_dir, tmp_path, capsys):
    trace = tmp_path / "run.jsonl"
    code = main(
        ["run", "Say hi", "--model", "tiny", "--seed", "0", "--max-tokens", "8",
         "--trace", str(trace), "--trace-content"]
    )  # fmt: skip
    capsys.readouterr()
    assert code in (0, 3)
    (root,) = [s for s in read_trace(trace) if s["name"].startswith("invoke_agent")]
    messages = json.loads(root["attributes"]["gen_ai.input.messages"])
    assert messages[0]["parts"][0]["content"] == "Say hi"


def test_extract_trace_has_the_extract_span(tmp_path, capsys):
    trace = tmp_path / "extract.jsonl"
    code = main(
        ["extract", "--text", "I live in Oslo.", "--choice", "Paris,Oslo",
         "--model", "tiny", "--trace", str(trace)]
    )  # fmt: skip
    out = capsys.readouterr().out.strip()
    assert code == 0
    (span,) = read_trace(trace)
    assert span["name"] == "extract tiny"
    assert span["parent_id"] is None
    assert span["attributes"]["gen_ai.output.type"] == "text"
    assert span["attributes"]["edge_agent.grammar.engine"] in ("llguidance", "regex")
    assert span["attributes"]["gen_ai.usage.output_tokens"] >= 1
    assert out in ("Paris", "Oslo")


def test_extract_over_documents_traces_one_span_per_document(tmp_path, capsys):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("Ann Lee, ann@example.com, lives in Oslo.", "utf-8")
    (folder / "b.txt").write_text("Bo Ek, bo@example.com, lives in Rome. " * 30, "utf-8")
    (folder / "c.pdf").write_bytes(b"not a pdf")
    trace, out = tmp_path / "trace.jsonl", tmp_path / "out.jsonl"
    code = main(
        ["extract", "--schema", "contact", "--model", "tiny", str(folder), "--out", str(out),
         "--max-tokens", "48", "--chunk-tokens", "64", "--batch", "2", "--trace", str(trace)]
    )  # fmt: skip
    capsys.readouterr()
    assert code == 2  # the unreadable document
    records = {Path(r["source"]).name: r for r in map(json.loads, out.read_text().splitlines())}
    spans = {Path(s["attributes"]["edge_agent.extract.source"]).name: s for s in read_trace(trace)}
    assert set(spans) == set(records) == {"a.txt", "b.txt", "c.pdf"}
    for name, span in spans.items():
        assert span["name"] == "extract tiny"
        attributes = span["attributes"]
        assert attributes["edge_agent.extract.chunks"] == records[name]["chunks"]
        assert "gen_ai.output.messages" not in attributes  # content capture is off
    assert spans["b.txt"]["attributes"]["edge_agent.extract.chunks"] > 1
    assert spans["a.txt"]["attributes"]["gen_ai.usage.output_tokens"] >= 1
    assert spans["c.pdf"]["status"]["status_code"] == "ERROR"
    assert spans["a.txt"]["status"]["status_code"] == "UNSET"


def test_a_trace_path_in_a_missing_directory_is_a_one_line_error(tmp_path, capsys):
    code = main(["run", "hi", "--model", "tiny", "--trace", str(tmp_path / "nope" / "t.jsonl")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "does not exist" in err and "Traceback" not in err


def test_without_the_sdk_trace_names_the_install_command(tmp_path):
    """The SDK hidden from the import system: `--trace` is one line and exit 2."""
    probe = (
        "import sys\n"
        "sys.modules['opentelemetry.sdk'] = None\n"
        "sys.modules['opentelemetry.sdk.trace'] = None\n"
        "from agent.cli.main import main\n"
        f"sys.exit(main(['run', 'hi', '--model', 'tiny', '--trace', {str(tmp_path / 't')!r}]))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "edge-agent: error: --trace needs the OpenTelemetry SDK: pip install 'edge-agent[otel]'"
    ]
    assert not (tmp_path / "t").exists()


def test_serve_continues_the_clients_w3c_trace():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    config = ServerConfig(tracing=Tracing(provider))
    client_tracer = provider.get_tracer("client")
    with serve_in_background(ScriptedModel(["hello there"], name="scripted"), config) as server:
        client = openai.OpenAI(base_url=server.url, api_key="none", max_retries=0)
        with client_tracer.start_as_current_span("client call") as parent:
            ctx = parent.get_span_context()
            traceparent = f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-01"
            reply = client.chat.completions.create(
                model="scripted",
                messages=[{"role": "user", "content": "hi"}],
                extra_headers={"traceparent": traceparent},
            )
    assert reply.choices[0].message.content == "hello there"
    (span,) = [s for s in exporter.get_finished_spans() if s.name == "chat scripted"]
    assert span.context.trace_id == ctx.trace_id
    assert span.parent is not None and span.parent.span_id == ctx.span_id
    assert span.attributes["gen_ai.usage.output_tokens"] == reply.usage.completion_tokens
    assert span.attributes["gen_ai.usage.input_tokens"] == reply.usage.prompt_tokens
    assert span.attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert span.status.status_code == StatusCode.UNSET
    assert "gen_ai.input.messages" not in span.attributes


def test_a_served_completion_records_the_clients_messages_in_genai_shape():
    """With content capture, the server span holds the conversation as the client sent
    it, typed and written as OpenTelemetry's GenAI messages (parts, not OpenAI dicts)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    config = ServerConfig(tracing=Tracing(provider, capture_content=True))
    messages = [
        {"role": "user", "content": "Weather in Oslo?"},
        {"role": "assistant", "content": None, "tool_calls": [{
            "id": "c1", "type": "function",
            "function": {"name": "weather", "arguments": '{"city": "Oslo"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "21c"},
    ]  # fmt: skip
    with serve_in_background(ScriptedModel(["It is 21c."], name="scripted"), config) as server:
        client = openai.OpenAI(base_url=server.url, api_key="none", max_retries=0)
        reply = client.chat.completions.create(model="scripted", messages=messages)
    assert reply.choices[0].message.content == "It is 21c."
    (span,) = [s for s in exporter.get_finished_spans() if s.name == "chat scripted"]
    assert json.loads(span.attributes["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "Weather in Oslo?"}]},
        {"role": "assistant", "parts": [
            {"type": "tool_call", "id": "c1", "name": "weather", "arguments": {"city": "Oslo"}}]},
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "c1", "response": "21c"}]},
    ]  # fmt: skip
    assert json.loads(span.attributes["gen_ai.output.messages"]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": "It is 21c."}]}
    ]


def test_an_agent_on_a_remote_server_and_the_server_share_one_trace():
    """The remote engine sends the run's traceparent; `serve` continues it."""
    from agent import Agent
    from agent.engines.remote import RemoteChatModel

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing = Tracing(provider)
    served = ScriptedModel(["fine, thanks"], name="scripted")
    with serve_in_background(served, ServerConfig(tracing=tracing)) as server:
        engine = RemoteChatModel(server.url, "scripted")
        result = Agent(engine, tracing=tracing, name="client").run("how are you?")
    assert result.content == "fine, thanks"
    spans = exporter.get_finished_spans()
    (root,) = [s for s in spans if s.name == "invoke_agent client"]
    server_span = next(s for s in spans if s.kind.name == "SERVER")
    client_chat = next(s for s in spans if s.name.startswith("chat ") and s.kind.name == "CLIENT")
    assert server_span.name == "chat scripted"
    assert server_span.context.trace_id == root.context.trace_id == client_chat.context.trace_id
    assert server_span.parent is not None and server_span.parent.span_id == root.context.span_id
    assert client_chat.attributes["gen_ai.provider.name"] == "openai"
    assert (
        client_chat.attributes["gen_ai.usage.output_tokens"]
        == server_span.attributes["gen_ai.usage.output_tokens"]
    )


def test_without_trace_the_otlp_variables_send_spans_and_metrics_to_a_collector(
    tmp_path, capsys, monkeypatch
):
    """A stand-in collector (OTLP over HTTP, protobuf) receives the extract span and the
    token-usage histogram when OTEL_EXPORTER_OTLP_ENDPOINT names it."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
        ExportMetricsServiceRequest,
    )
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    received: dict[str, list[bytes]] = {}

    class Collector(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.setdefault(self.path, []).append(body)
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
        monkeypatch.setenv("OTEL_SERVICE_NAME", "extract-test")
        code = main(["extract", "--text", "Oslo", "--choice", "Paris,Oslo", "--model", "tiny"])
        capsys.readouterr()
    finally:
        server.shutdown()
        thread.join(timeout=10)
    assert code == 0
    spans = []
    for body in received["/v1/traces"]:
        request = ExportTraceServiceRequest.FromString(body)
        for resource in request.resource_spans:
            service = {a.key: a.value.string_value for a in resource.resource.attributes}
            assert service["service.name"] == "extract-test"
            spans += [s.name for scope in resource.scope_spans for s in scope.spans]
    assert spans == ["extract tiny"]
    metrics = {
        m.name
        for body in received["/v1/metrics"]
        for rm in ExportMetricsServiceRequest.FromString(body).resource_metrics
        for scope in rm.scope_metrics
        for m in scope.metrics
    }
    assert {"gen_ai.client.token.usage", "gen_ai.client.operation.duration"} <= metrics
