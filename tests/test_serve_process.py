"""`edge-agent serve` as a process: the bind policy, the agent loop as its client, Ctrl+C.

edge-agent's own `Agent`, driving a `RemoteChatModel`, talks to a real `edge-agent serve`
process serving `tiny`: the calls it gets back are valid (the server decodes them under
the grammar), so none comes back to the model as an error.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import jsonschema
import pytest

from agent import Agent, SamplingParams
from agent.engines.remote import RemoteChatModel
from agent.events import ToolCallEvent, ToolResultEvent
from tools import ToolRegistry, tool

SERVE = [sys.executable, "-m", "agent.cli.main", "serve"]


@tool
def weather(city: Literal["Oslo", "Paris", "Lisbon"], unit: Literal["c", "f"] = "c") -> str:
    """Current weather in a city.

    Args:
        city: The city.
        unit: Celsius or Fahrenheit.
    """
    return f"{city}: 21 {unit}"


def _run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*SERVE, *args], capture_output=True, text=True, timeout=120, env=env, check=False
    )


def test_a_non_loopback_bind_without_a_key_is_refused_before_loading():
    env = {k: v for k, v in os.environ.items() if k != "EDGE_AGENT_API_KEY"}
    proc = _run(["--host", "0.0.0.0", "--model", "no-such-model"], env)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "binding 0.0.0.0 exposes the model to the network" in proc.stderr
    assert "--api-key" in proc.stderr


def test_a_port_in_use_is_one_line():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = _run(["--port", str(port), "--model", "no-such-model"])
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert f"127.0.0.1:{port} is in use" in proc.stderr


def test_bad_flags_are_one_line():
    proc = _run(["--port", "70000"])
    assert proc.returncode == 2 and "a port is 0-65535" in proc.stderr


@contextmanager
def serve_process(*args: str) -> Iterator[tuple[str, list[str], subprocess.Popen]]:
    """`edge-agent serve --model tiny --port 0 ARGS` until the block ends; its URL, the
    lines of its stderr so far, and the process."""
    proc = subprocess.Popen(
        [*SERVE, "--model", "tiny", "--port", "0", *args],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    lines: list[str] = []
    ready = threading.Event()
    url: list[str] = []

    def drain() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            found = re.search(r" at (http://\S+/v1)", line)
            if found:
                url.append(found.group(1))
                ready.set()
        ready.set()

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        ready.wait(timeout=300)
        assert url, "".join(lines)
        yield url[0], lines, proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        reader.join(timeout=10)


def test_the_agent_loop_gets_valid_calls_from_a_real_server_and_ctrl_c_stops_it():
    with serve_process() as (url, lines, proc):
        engine = RemoteChatModel(url, "tiny", sampling=SamplingParams(seed=3))
        agent = Agent(engine, [weather], tool_choice="required", max_steps=3, max_tokens=600)
        result = agent.run("What is the weather in Oslo?")
        calls = result.of_type(ToolCallEvent)
        assert calls, result.final.reason
        schema = ToolRegistry([weather]).call_schema()
        for call in calls:
            jsonschema.validate({"name": call.name, "arguments": call.arguments}, schema)
        assert [r.error for r in result.of_type(ToolResultEvent)] == [None] * len(calls)
        assert result.stopped_by != "error", result.final.reason

        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
    text = "".join(lines)
    assert "Traceback" not in text
    assert "edge-agent serve: stopped" in text
    assert "tiny (3-bit" in text  # the model and its quantization are shown on start
    # One line per request; the second step extends the first one's prompt cache past
    # its prompt, into the call block the server restored as it was generated.
    first = re.search(r"#1 tool_calls \| queue \d+ ms \| prompt (\d+) tok .*\| (\d+) tok", text)
    second = re.search(r"#2 \w+ \| queue \d+ ms \| prompt \d+ tok \((\d+) cached\)", text)
    assert first and second, text
    assert int(first.group(1)) < int(second.group(1)) < int(first.group(1)) + int(first.group(2))


def test_an_api_key_from_the_environment_protects_a_real_server():
    env_key = {**os.environ, "EDGE_AGENT_API_KEY": "from-env"}
    proc = subprocess.Popen(
        [*SERVE, "--model", "tiny", "--port", "0"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=env_key,
    )
    try:
        assert proc.stderr is not None
        url = ""
        for line in proc.stderr:
            found = re.search(r" at (http://\S+/v1)", line)
            if found:
                url = found.group(1)
                assert "(API key required)" in line
                break
        import httpx

        assert httpx.get(f"{url}/models").status_code == 401
        good = httpx.get(f"{url}/models", headers={"Authorization": "Bearer from-env"})
        assert good.status_code == 200 and good.json()["data"][0]["id"] == "tiny"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)


@pytest.mark.parametrize("host", ["localhost", "::1"])
def test_loopback_names_need_no_key(host):
    from agent.server.serve import check_exposure, is_loopback

    try:
        socket.getaddrinfo(host, None)
    except socket.gaierror:
        pytest.skip(f"{host} does not resolve here")
    assert is_loopback(host)
    check_exposure(host, None)  # no error


def test_the_openai_agent_example_runs_its_loop_against_a_server():
    example = Path(__file__).resolve().parents[1] / "examples" / "openai_agent.py"
    proc = subprocess.run(
        [sys.executable, str(example), "--serve", "tiny", "Weather in Oslo?"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "step 1: tool_calls" in proc.stderr and "Traceback" not in proc.stderr
    assert re.search(r"  (forecast|multiply)\(\{.*\}\) -> ", proc.stderr)
    second = re.search(r"step 2: \w+; prompt \d+ tok \((\d+) cached\)", proc.stderr)
    assert second and int(second.group(1)) > 0, proc.stderr


@pytest.mark.parametrize("engine", ["mlx", "llama.cpp"])
def test_the_engine_flag_chooses_the_runtime_that_serves(engine):
    with serve_process("--engine", engine) as (url, lines, proc):
        import httpx

        assert httpx.get(url.removesuffix("/v1") + "/health", timeout=30).status_code == 200
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
    assert f"on {engine}," in "".join(lines)


def test_serve_trace_writes_a_span_per_completion_in_the_callers_trace(tmp_path):
    import json

    import httpx

    trace = tmp_path / "serve.jsonl"
    trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    with serve_process("--trace", str(trace)) as (url, lines, proc):
        reply = httpx.post(
            f"{url}/chat/completions",
            json={"model": "tiny", "messages": [{"role": "user", "content": "hi"}],
                  "max_tokens": 8},
            headers={"traceparent": f"00-{trace_id}-{parent_id}-01"},
            timeout=120,
        )  # fmt: skip
        assert reply.status_code == 200, reply.text
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
    (span,) = [json.loads(line) for line in trace.read_text(encoding="utf-8").splitlines()]
    assert span["name"] == "chat tiny" and span["kind"] == "SpanKind.SERVER"
    assert span["context"]["trace_id"] == f"0x{trace_id}"
    assert span["parent_id"] == f"0x{parent_id}"
    usage = reply.json()["usage"]
    assert span["attributes"]["gen_ai.usage.output_tokens"] == usage["completion_tokens"]
    assert span["attributes"]["gen_ai.usage.input_tokens"] == usage["prompt_tokens"]
    assert "Traceback" not in "".join(lines)
