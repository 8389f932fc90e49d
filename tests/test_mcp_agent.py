"""MCP end to end: the agent with the tiny model calling MCP tools under the call
grammar (Python API and `edge-agent run`), and `edge-agent mcp-serve` as the server
edge-agent's own agent uses (stdio and streamable HTTP)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys

import jsonschema
import pytest

from agent.agent import Agent
from agent.events import ToolCallEvent, ToolResultEvent
from agent.sampling import SamplingParams
from tests.mcp_helpers import (
    ROOT,
    child_env,
    command,
    first_line_matching,
    processes_with,
    run_cli,
    write_server,
)
from tools import ToolCall, ToolRegistry, approve_all, builtin_tools
from tools.mcp import MCPServerConfig

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")


def mcp_serve(*args: str, name: str = "edge") -> MCPServerConfig:
    """`edge-agent mcp-serve ARGS` as a trusted stdio server of this checkout."""
    return MCPServerConfig(
        name,
        command=sys.executable,
        args=("-m", "agent.cli.main", "mcp-serve", *args),
        env=child_env(),
        cwd=str(ROOT),
        trusted=True,
        timeout=120,
        startup_timeout=120,
    )


def test_the_agents_grammar_constrained_calls_reach_the_mcp_tool(tiny, tmp_path):
    server = write_server(tmp_path)
    with Agent(
        tiny,
        mcp_servers=[command(server)],
        tool_choice="add",
        max_steps=1,
        approve=approve_all,
        sampling=SamplingParams(temperature=1.0, seed=3),
    ) as agent:
        assert "add" in agent.registry.names()
        result = agent.run("Add two numbers.")
        calls = result.of_type(ToolCallEvent)
        results = result.of_type(ToolResultEvent)
        assert calls and len(results) == len(calls)
        for c, r in zip(calls, results, strict=True):
            assert c.name == "add" and r.error is None
            # The server computed it from the arguments the grammar let the model write.
            assert json.loads(r.content) == {"result": c.arguments["a"] + c.arguments["b"]}
        assert len(processes_with(str(server))) == 1
    assert processes_with(str(server)) == []


def test_raw_items_reach_the_tool_result_event(tiny, tmp_path):
    server = write_server(tmp_path)
    with Agent(
        tiny, mcp_servers=[command(server)], tool_choice="picture", max_steps=1,
        approve=approve_all,
    ) as agent:  # fmt: skip
        result = agent.run("Show me the picture.")
    event = result.of_type(ToolResultEvent)[0]
    assert event.items[0]["type"] == "image" and event.items[1]["type"] == "resource"
    assert event.to_dict()["items"][0]["mimeType"] == "image/png"
    assert "UE5HREFUQQ==" not in event.content


def test_a_bad_tool_choice_stops_the_servers_it_started(tiny, tmp_path):
    server = write_server(tmp_path)
    with pytest.raises(Exception, match="tool_choice"):
        Agent(tiny, mcp_servers=[command(server)], tool_choice="no_such_tool")
    assert processes_with(str(server)) == []


def test_run_cli_with_mcp_calls_the_server_and_prints_its_results(tmp_path):
    server = write_server(tmp_path)
    proc = run_cli(
        "run", "--model", "tiny", "--mcp", command(server), "--tool-choice", "add",
        "--max-steps", "1", "--yes", "--json", "--seed", "5", "Add two numbers.",
    )  # fmt: skip
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    calls = [e for e in events if e["type"] == "tool_call"]
    results = [e for e in events if e["type"] == "tool_result"]
    assert calls and len(results) == len(calls), proc.stderr
    for c, r in zip(calls, results, strict=True):
        assert json.loads(r["content"]) == {"result": c["arguments"]["a"] + c["arguments"]["b"]}
    assert "MCP server mcp_test_server (stdio, calls need approval): 6 tool(s)" in proc.stderr
    assert events[-1]["type"] == "final"
    assert processes_with(str(server)) == []


def test_run_cli_without_yes_denies_untrusted_mcp_calls(tmp_path):
    server = write_server(tmp_path)
    config = tmp_path / "mcp.json"
    config.write_text(json.dumps({"mcpServers": {"calc": {
        "command": sys.executable, "args": [str(server)]}}}))  # fmt: skip
    proc = run_cli(
        "run", "--model", "tiny", "--mcp-config", str(config), "--tool-choice", "add",
        "--max-steps", "1", "--json", "Add.",
    )  # fmt: skip
    results = [json.loads(x) for x in proc.stdout.splitlines() if '"tool_result"' in x]
    assert results and all(r["error"] == "denied by the user" for r in results)
    assert "needs approval, and stdin is not a terminal" in proc.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--mcp", "no-such-mcp-program --x"], "MCP server 'no-such-mcp-program' failed to start"),
        (["--mcp-config", "/no/mcp.json"], "MCP config '/no/mcp.json' does not exist"),
        (["--mcp", "python 'oops"], "check the quotes"),
    ],
)  # fmt: skip
def test_run_cli_mcp_mistakes_are_one_line_and_exit_2(args, message):
    proc = run_cli("run", "--model", "tiny", *args, "hi", timeout=120)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert "Loading tiny" not in proc.stderr  # refused before any model loads


def test_mcp_serve_round_trip_tools_search_and_extract(tmp_path, capsys):
    from tests.rag_helpers import run_cli as rag_cli

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "owls.md").write_text("Owls hunt at night and sleep during the day.\n")
    (docs / "bees.md").write_text("Bees make honey from the nectar of flowers.\n")
    index = tmp_path / "index"
    ingested = rag_cli(capsys, "ingest", str(docs), "--index", str(index))
    assert ingested.returncode == 0, ingested.stderr
    config = mcp_serve("--index", str(index), "--model", "tiny")
    with ToolRegistry(mcp_servers=[config]) as registry:
        assert registry.names() == [
            "calculator", "http_get", "read_file", "list_dir", "now", "rag_search", "extract",
        ]  # fmt: skip
        assert registry["extract"].parameters["required"] == ["text", "schema"]
        sum_ = registry.execute_sync(ToolCall.new("calculator", {"expression": "6*7"}))
        assert sum_.content == "42"
        hits = registry.execute_sync(ToolCall.new("rag_search", {"query": "honey bees"}))
        assert hits.ok and hits.content.startswith("[1] ") and "honey" in hits.content
        schema = {
            "type": "object",
            "properties": {"animal": {"type": "string", "enum": ["owl", "bee"]},
                           "count": {"type": "integer", "minimum": 0, "maximum": 9}},
            "required": ["animal", "count"],
            "additionalProperties": False,
        }  # fmt: skip
        extracted = registry.execute_sync(
            ToolCall.new("extract", {"text": "Two owls.", "schema": schema, "max_tokens": 64})
        )
        assert extracted.ok, extracted.error
        jsonschema.validate(json.loads(extracted.content), schema)  # the random model, too
        # A file path is not a schema the server reads: the argument schema refuses it.
        path = registry.execute_sync(
            ToolCall.new("extract", {"text": "x", "schema": "/etc/passwd"})
        )
        assert not path.ok and "invalid arguments for 'extract'" in path.error


def test_the_agent_uses_mcp_serve_as_its_mcp_server(tiny):
    config = mcp_serve("--tool", "now", "--tool", "calculator")
    with Agent(
        tiny, mcp_servers=[config], tool_choice="now", max_steps=1,
        max_tokens=512, sampling=SamplingParams(temperature=0.8, seed=1),
    ) as agent:  # fmt: skip
        result = agent.run("What time is it?")
    call = result.of_type(ToolCallEvent)[0]
    served = result.of_type(ToolResultEvent)[0]
    assert served.name == "now"
    # What the built-in tool says here to the same arguments (a random model may well
    # ask for a time zone that does not exist): the server ran the real tool.
    local = ToolRegistry(builtin_tools(["now"])).execute_sync(ToolCall("x", "now", call.arguments))
    if local.ok:
        assert served.error is None
        assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", served.content)
    else:
        assert served.error == local.error


def test_mcp_serve_over_streamable_http(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent.cli.main", "mcp-serve", "--http", "--port", "0",
         "--tool", "calculator"],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, cwd=ROOT,
        env={**os.environ, **child_env()},
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        url = first_line_matching(proc.stderr, r"at (http://\S+/mcp)").group(1)
        with ToolRegistry(mcp_servers=[MCPServerConfig("web", url=url, trusted=True)]) as registry:
            assert registry.names() == ["calculator"]
            assert (
                registry.execute_sync(ToolCall.new("calculator", {"expression": "2**10"})).content
                == "1024"
            )
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tool", "nope"], "unknown tool(s) nope; mcp-serve offers"),
        (["--tool", "rag_search"], "needs an index: pass --index DIR"),
        (["--http", "--host", "0.0.0.0"], "give --api-key KEY"),
    ],
)
def test_mcp_serve_mistakes_are_one_line_and_exit_2(args, message):
    proc = run_cli("mcp-serve", *args, timeout=120)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr


@pytest.fixture
def served_with_mcp(tiny, tmp_path):
    """`serve` of the tiny model running an MCP server's tools itself (as `serve --mcp
    ... --yes` does), with at most two model steps per request."""
    import httpx

    from agent.engines.local import LocalChatModel
    from agent.server import ServerConfig
    from agent.server.serve import serve_in_background

    server = write_server(tmp_path)
    with ToolRegistry(mcp_servers=[command(server)]) as registry:
        config = ServerConfig(server_tools=registry, approve_server_tools=True,
                              server_tool_steps=2)  # fmt: skip
        with (
            serve_in_background(LocalChatModel.for_model(tiny), config) as served,
            httpx.Client(base_url=served.url, timeout=300) as client,
        ):
            yield client


def test_serve_runs_the_mcp_tools_and_answers(served_with_mcp):
    response = served_with_mcp.post("/chat/completions", json={
        "model": "tiny", "messages": [{"role": "user", "content": "Add two numbers."}],
        "tool_choice": {"type": "function", "function": {"name": "add"}},
        "max_tokens": 64, "seed": 1,
    })  # fmt: skip
    assert response.status_code == 200, response.text
    body = response.json()
    ran = body["server_tool_results"]
    assert ran and all(r["name"] == "add" and "error" not in r for r in ran)
    for r in ran:
        arguments = json.loads(r["arguments"])
        assert json.loads(r["content"]) == {"result": arguments["a"] + arguments["b"]}
    message = body["choices"][0]["message"]
    assert not message.get("tool_calls")  # the last step answers: the client gets text
    assert isinstance(message["content"], str)
    assert body["usage"]["completion_tokens"] > 0


def test_serve_with_mcp_tools_refuses_streaming_and_name_clashes(served_with_mcp):
    base = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}]}
    streamed = served_with_mcp.post("/chat/completions", json={**base, "stream": True})
    assert streamed.status_code == 400 and "stream: false" in streamed.text
    clash = {"type": "function", "function": {"name": "add", "parameters": {"type": "object"}}}
    clashed = served_with_mcp.post("/chat/completions", json={**base, "tools": [clash]})
    assert clashed.status_code == 400 and "server's own tools" in clashed.text


def test_serve_cli_refuses_a_failing_mcp_server_before_loading_the_model():
    proc = run_cli("serve", "--model", "tiny", "--port", "0", "--mcp", "no-such-mcp-program")
    assert proc.returncode == 2
    assert "MCP server 'no-such-mcp-program' failed to start" in proc.stderr
    assert "Loading tiny" not in proc.stderr and "Traceback" not in proc.stderr


def test_chat_cli_checks_its_mcp_config_before_the_ui(tmp_path):
    bad = tmp_path / "mcp.json"
    bad.write_text('{"mcpServers": {"a": {"comand": "x"}}}')
    proc = run_cli("chat", "--model", "tiny", "--mcp-config", str(bad), timeout=120)
    assert proc.returncode == 2
    assert "server 'a': unknown key(s) comand" in proc.stderr and "Traceback" not in proc.stderr


def test_the_tui_asks_about_mcp_calls_and_shows_their_cards(tmp_path):
    from agent.sessions import SessionStore
    from tests.test_tui_app import SIZE, ready, run_async, send, wait_for
    from tui.agent_backend import AgentBackend, ChatOptions
    from tui.app import EdgeAgentApp
    from tui.widgets.approval import ApprovalScreen
    from tui.widgets.tool_card import ToolCard

    server = write_server(tmp_path)
    with ToolRegistry(mcp_servers=[command(server)]) as registry:
        options = ChatOptions(
            model="tiny", tools=registry.tools(), tool_choice="add", max_steps=1,
            max_tokens=48, sampling_overrides={"seed": 7, "temperature": 0.8},
        )  # fmt: skip
        app = EdgeAgentApp(AgentBackend(options, SessionStore(tmp_path / "s.sqlite3")))

        @run_async
        async def drive() -> None:
            async with app.run_test(size=SIZE) as pilot:
                await ready(pilot)
                await send(pilot, "Add two numbers")
                await wait_for(pilot, lambda: isinstance(app.screen, ApprovalScreen))
                assert app.screen.tool_name == "add"  # an untrusted server: asked first
                await pilot.press("y")
                await wait_for(pilot, lambda: not app.generating)
                card = app.chat.turns[-1].query_one(ToolCard)
                assert card.state == "done", card.result
                a, b = card.call.arguments["a"], card.call.arguments["b"]
                assert json.loads(card.result.content) == {"result": a + b}

        drive()
