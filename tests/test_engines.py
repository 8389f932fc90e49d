"""Engines behind one seam: the scripted model, and OpenAI-compatible servers over HTTP.

The remote tests talk to a real uvicorn serving `tests/openai_stub.py`, a server that can
misbehave like real ones (ignore `response_format`, send malformed arguments, answer 429,
drop the stream, stall, refuse a key); the same events must come out as from a local
model, and nothing invalid may pass as valid.
"""

from __future__ import annotations

import json
import socket
import struct
import subprocess
import sys
import threading

import pytest
from openai_stub import StubReply, StubServer, free_port, running

from agent import Agent
from agent.engines import load_chat_model
from agent.engines.remote import RemoteChatModel
from agent.engines.scripted import Reply, ScriptedModel
from agent.errors import UserError
from agent.events import (
    ErrorEvent,
    ReasoningDelta,
    StatsEvent,
    TextDelta,
    ToolCallEvent,
    ToolResultEvent,
)
from agent.messages import AssistantMessage, ToolMessage
from tools import tool


@tool
def weather(city: str, unit: str = "c") -> str:
    """Weather in a city."""
    return f"{city}: 21{unit}"


ANSWER = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "temp": {"type": "integer"}},
    "required": ["city", "temp"],
    "additionalProperties": False,
}


# ------------------------------------------------------------------ scripted
def test_scripted_model_drives_the_loop_through_a_tool_call():
    model = ScriptedModel(
        [Reply(reasoning="I should look.", calls=[("weather", {"city": "Paris"})]),
         Reply(text="It is 21c in Paris.")]
    )  # fmt: skip
    result = Agent(model, [weather]).run("Weather in Paris?")
    assert result.stopped_by is None
    assert result.content == "It is 21c in Paris."
    assert [e.name for e in result.of_type(ToolCallEvent)] == ["weather"]
    assert result.of_type(ToolResultEvent)[0].content == "Paris: 21c"
    assert "".join(e.text for e in result.of_type(ReasoningDelta)) == "I should look."
    # The second step saw the tool's result, tied to the call it answers.
    second = model.requests[1].messages
    result_turn, call_turn = second[-1], second[-2]
    assert isinstance(result_turn, ToolMessage) and result_turn.content == "Paris: 21c"
    assert isinstance(call_turn, AssistantMessage)
    assert result_turn.tool_call_id == call_turn.tool_calls[0].id


def test_scripted_model_as_a_function_of_the_request():
    def reply(request):
        return Reply(text=f"{len(request.messages)} message(s), choice {request.tool_choice}")

    result = Agent(ScriptedModel(reply), [weather], tool_choice="none").run("hi")
    assert result.content == "1 message(s), choice none"


def test_invalid_scripted_arguments_become_error_results():
    model = ScriptedModel([Reply(calls=[("weather", {"town": "Paris"})]), "Sorry."])
    result = Agent(model, [weather]).run("Weather?")
    error = result.of_type(ToolResultEvent)[0].error
    assert error and "city" in error
    assert result.content == "Sorry."


def test_a_script_that_runs_out_ends_the_run_with_an_error():
    result = Agent(ScriptedModel([]), [weather]).run("hi")
    assert result.stopped_by == "error" and "no reply left" in (result.final.reason or "")


# ------------------------------------------------------------------ remote
def _remote(stub: StubServer, **kwargs) -> RemoteChatModel:
    return RemoteChatModel(stub.url, "stub", **kwargs)


def test_remote_chat_streams_text_and_stats():
    with running(StubServer([StubReply(text="Hello there friend", reasoning="think")])) as stub:
        result = Agent(_remote(stub)).run("hi")
    assert result.content == "Hello there friend"
    assert len(result.of_type(TextDelta)) == 3  # streamed as it came
    assert result.of_type(ReasoningDelta)[0].text == "think"
    stats = result.of_type(StatsEvent)[0].stats
    assert stats.prompt_tokens == 20 and stats.generated_tokens == 4
    assert stats.ttft_s > 0 and stats.finish_reason == "stop"
    body = stub.requests[0]
    assert body["stream"] is True and body["model"] == "stub"
    assert body["messages"][-1] == {"role": "user", "content": "hi"}


def test_remote_tool_call_round_trip_keeps_openai_shapes():
    replies = [
        StubReply(calls=[("weather", json.dumps({"city": "Oslo"}))]),
        StubReply(text="Oslo is 21c."),
    ]
    with running(StubServer(replies)) as stub:
        result = Agent(_remote(stub), [weather], tool_choice="required").run("Oslo?")
    assert result.content == "Oslo is 21c."
    assert result.of_type(ToolResultEvent)[0].content == "Oslo: 21c"
    first, second = stub.requests
    assert first["tool_choice"] == "required"
    assert first["tools"][0]["function"]["name"] == "weather"
    assistant, tool_turn = second["messages"][-2:]
    assert assistant["tool_calls"][0]["id"] == "call_stub_0"
    assert tool_turn == {"role": "tool", "tool_call_id": "call_stub_0", "content": "Oslo: 21c"}
    assert second["tool_choice"] == "auto"  # required applies to the first step


def test_malformed_remote_arguments_go_back_as_errors_and_say_unverified():
    replies = [
        StubReply(calls=[("weather", '{"city": ')]),  # not JSON
        StubReply(calls=[("weather", '{"town": "Oslo"}')]),  # not the schema
        StubReply(text="I give up."),
    ]
    with running(StubServer(replies)) as stub:
        result = Agent(_remote(stub), [weather]).run("Oslo?")
    errors = [e.error for e in result.of_type(ToolResultEvent)]
    assert "not JSON" in errors[0] and "invalid call" in errors[1]
    stats = [e.stats for e in result.of_type(StatsEvent)]
    assert stats[0].grammar_engine == "remote-unverified"
    assert result.content == "I give up."


def test_remote_arguments_json_refuses_go_back_as_errors():
    # Python's json raises a plain ValueError (no .msg) for an integer of more than 4300
    # digits; the call must still go back to the model as "not JSON", not crash the run.
    replies = [
        StubReply(calls=[("weather", '{"city": ' + "1" * 5000 + "}")]),
        StubReply(text="I give up."),
    ]
    with running(StubServer(replies)) as stub:
        result = Agent(_remote(stub), [weather]).run("Oslo?")
    errors = [e.error for e in result.of_type(ToolResultEvent)]
    assert len(errors) == 1 and "not JSON" in errors[0] and "4300" in errors[0]
    assert result.content == "I give up."


def test_an_ignored_response_format_is_caught_and_retried():
    replies = [
        StubReply(text="it is warm"),  # the server ignored response_format
        StubReply(text=json.dumps({"city": "Oslo", "temp": 21})),
    ]
    with running(StubServer(replies)) as stub:
        result = Agent(_remote(stub), response_format=ANSWER).run("Oslo?")
    assert result.output == {"city": "Oslo", "temp": 21}
    assert stub.requests[0]["response_format"]["json_schema"]["schema"] == ANSWER
    assert "does not follow the required JSON Schema" in stub.requests[1]["messages"][-1]["content"]


def test_429_is_retried_after_the_servers_delay():
    with running(StubServer([StubReply(text="ok")], fail_first=2)) as stub:
        result = Agent(_remote(stub)).run("hi")
    assert result.content == "ok" and len(stub.requests) == 3


def test_a_dropped_stream_is_a_clear_error_not_a_hang():
    with running(StubServer([StubReply(text="one two three four")], drop_after=2)) as stub:
        result = Agent(_remote(stub, max_retries=0)).run("hi")
    assert result.stopped_by == "error"
    assert "closed the stream" in result.of_type(ErrorEvent)[0].message


def test_connection_refused_and_timeouts_are_clear_errors():
    nobody = RemoteChatModel(f"http://127.0.0.1:{free_port()}/v1", "x", max_retries=0)
    result = Agent(nobody).run("hi")
    assert result.stopped_by == "error" and "cannot reach" in (result.final.reason or "")
    with running(StubServer([StubReply(text="late")], stall_s=3.0)) as stub:
        slow = _remote(stub, read_timeout=0.5, max_retries=0)
        result = Agent(slow).run("hi")
    assert result.stopped_by == "error" and "did not answer within" in (result.final.reason or "")


def test_api_keys_are_sent_and_refusals_named(monkeypatch):
    with running(StubServer([StubReply(text="ok")], api_key="sekret")) as stub:
        monkeypatch.setenv("EDGE_AGENT_API_KEY", "wrong")
        result = Agent(_remote(stub)).run("hi")
        assert result.stopped_by == "error" and "API key" in (result.final.reason or "")
        monkeypatch.setenv("EDGE_AGENT_API_KEY", "sekret")
        assert Agent(_remote(stub)).run("hi").content == "ok"


def test_remote_specs_parse_and_bad_ones_are_user_errors():
    model = load_chat_model("openai:http://localhost:8000/v1#LFM2-8B-A1B")
    assert isinstance(model, RemoteChatModel)
    assert model.base_url == "http://localhost:8000/v1" and model.model == "LFM2-8B-A1B"
    same = load_chat_model("LFM2-8B-A1B", base_url="http://localhost:8000/v1")
    assert isinstance(same, RemoteChatModel) and same.model == "LFM2-8B-A1B"
    with pytest.raises(UserError, match="openai:http"):
        load_chat_model("openai:localhost:8000#x")
    with pytest.raises(UserError, match="JSON Schema answers only"):
        Agent(model, response_format=["yes", "no"])


def test_cli_run_against_a_remote_server_prints_json_events():
    replies = [StubReply(calls=[("calculator", json.dumps({"expression": "6*7"}))]),
               StubReply(text="42")]  # fmt: skip
    with running(StubServer(replies)) as stub:
        proc = subprocess.run(
            [sys.executable, "-m", "agent.cli.main", "run", "--json", "--tool", "calculator",
             "--model", f"openai:{stub.url}#stub", "What is 6*7?"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    types = [e["type"] for e in events]
    assert types[0] in ("stats", "tool_call") and types[-1] == "final"
    result = next(e for e in events if e["type"] == "tool_result")
    assert result["content"] == "42"
    assert events[-1]["content"] == "42"


def test_nothing_above_the_seam_imports_mlx():
    """The agent loop, the scripted and remote engines and structured output's spec
    handling run without MLX, mlx-lm, transformers or a grammar engine loaded."""
    probe = (
        "import sys\n"
        "from agent import Agent\n"
        "from agent.engines.remote import RemoteChatModel\n"
        "from agent.engines.scripted import Reply, ScriptedModel\n"
        "r = Agent(ScriptedModel([Reply(answer={'a': 1})]), response_format={'type': 'object'})"
        ".run('x')\n"
        "assert r.output == {'a': 1}, r.final\n"
        "heavy = {'mlx', 'mlx_lm', 'transformers', 'llguidance', 'outlines_core', 'textual'}\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & heavy))\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def _resetting_server() -> tuple[int, threading.Thread]:
    """A TCP server that reads one request and resets the connection (RST, no reply)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def serve() -> None:
        with server:
            conn, _ = server.accept()
            conn.recv(65536)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return server.getsockname()[1], thread


def test_a_reset_connection_is_one_line_from_the_cli(capsys):
    from agent.cli.main import main

    port, thread = _resetting_server()
    code = main(["generate", "--model", f"openai:http://127.0.0.1:{port}/v1#m", "hi"])
    thread.join(timeout=30)
    err = capsys.readouterr().err
    assert code == 2, err
    assert (
        "Traceback" not in err and f"127.0.0.1:{port}" in err and len(err.strip().splitlines()) == 1
    )
