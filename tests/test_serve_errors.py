"""`edge-agent serve`'s errors, queue and cancellation, through the `openai` client.

Every mistake is OpenAI's error shape with the right status (400 naming the problem,
401, 404, 429 with Retry-After, 500 while the server goes on serving), and a client
that goes away, while it waits or while its answer streams, frees the model: asserted
on the server's counters and on the next request being served, never on time.
"""

from __future__ import annotations

import json
import logging
import socket
import threading

import httpx
import openai
import pytest
from openai import OpenAI
from serve_helpers import LONG_ANSWER, TOOLS, WEATHER, health, wait_for

from agent.engines.local import LocalChatModel
from agent.engines.scripted import Reply, ScriptedModel
from agent.server import ServerConfig
from agent.server.serve import serve_in_background

USER = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def engine(tiny):
    tiny.reset_cache()
    return LocalChatModel.for_model(tiny)


@pytest.fixture(scope="module")
def url(engine):
    with serve_in_background(engine, ServerConfig(max_queue=1)) as server:
        yield server.url


def _client(url: str, key: str = "none") -> OpenAI:
    return OpenAI(base_url=url, api_key=key, max_retries=0, timeout=120)


@pytest.fixture
def client(url):
    return _client(url)


def _error(exc_info) -> dict:
    return exc_info.value.body  # the "error" object of the response


# ------------------------------------------------------------------ 400 and 404
def _answer(schema: dict) -> dict:
    return {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}


@pytest.mark.parametrize(
    ("schema", "code", "named"),
    [
        ({"type": "string", "minLength": -1}, "invalid_schema", "minLength"),
        (
            {"allOf": [{"pattern": "^a+$"}, {"pattern": "^b+$"}], "type": "string"},
            "unsupported_schema",
            "pattern",
        ),
        ({"allOf": [{"type": "string"}, {"type": "integer"}]}, "unsatisfiable_schema", ""),
    ],
)
def test_a_schema_that_cannot_be_a_grammar_is_a_400_naming_it(client, schema, code, named):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="tiny", messages=USER, response_format=_answer(schema), max_tokens=50
        )
    assert info.value.status_code == 400
    assert _error(info)["code"] == code and named in _error(info)["message"]


def test_a_bad_tool_definition_is_a_400(client):
    bad = {"type": "function", "function": {"name": "f", "parameters": {"type": "array"}}}
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="tiny", messages=USER, tools=[bad], max_tokens=9)
    assert _error(info)["param"] == "tools" and "object" in _error(info)["message"]


def test_a_prompt_over_the_context_window_is_a_400(client, engine):
    words = " ".join(f"w{i}" for i in range(engine.context_length))
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="tiny", messages=[{"role": "user", "content": words}], max_tokens=5
        )
    assert _error(info)["code"] == "context_length_exceeded"
    assert f"context window is {engine.context_length}" in _error(info)["message"]


def test_a_max_tokens_too_small_for_the_shortest_call_is_a_400(client):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="tiny", messages=USER, tools=[WEATHER], tool_choice="required", max_tokens=3
        )
    assert _error(info)["code"] == "max_tokens_too_small"
    assert "shortest valid tool call" in _error(info)["message"]


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"n": 2}, "n"),
        ({"logprobs": True}, "logprobs"),
        ({"presence_penalty": 0.5}, "presence_penalty"),
        ({"temperature": 3}, "temperature"),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "nope"}}},
         "tool_choice"),
        ({"messages": [{"role": "user", "content": [{"type": "image_url",
                                                     "image_url": {"url": "x"}}]}]},
         "messages"),
        ({"messages": []}, "messages"),
    ],
)  # fmt: skip
def test_unsupported_or_malformed_requests_are_400s_naming_the_field(client, kwargs, param):
    arguments = {"model": "tiny", "messages": USER, "max_tokens": 4, **kwargs}
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(**arguments)
    assert _error(info)["param"] == param, _error(info)


def test_an_unknown_model_or_route_is_a_404(client, url):
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="gpt-4o", messages=USER, max_tokens=4)
    assert "'tiny'" in _error(info)["message"]
    response = httpx.get(url + "/nothing/here")
    assert response.status_code == 404 and "error" in response.json()
    response = httpx.post(url + "/chat/completions", content=b"{not json")
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "the request body is not JSON"


# ------------------------------------------------------------------ 401
def test_the_api_key_is_enforced(engine):
    with serve_in_background(engine, ServerConfig(api_key="s3cret")) as server:
        for key in ("wrong", "s3cre"):
            with pytest.raises(openai.AuthenticationError) as info:
                _client(server.url, key).chat.completions.create(
                    model="tiny", messages=USER, max_tokens=2
                )
            assert _error(info)["code"] == "invalid_api_key"
        assert httpx.get(server.url + "/models").status_code == 401  # no key at all
        reply = _client(server.url, "s3cret").chat.completions.create(
            model="tiny", messages=USER, max_tokens=2
        )
        assert reply.usage.completion_tokens >= 1
        assert health(server.url)["status"] == "ok"  # a load balancer needs no key


# ------------------------------------------------------------------ queue and cancel
def _raw_request(url: str, body: dict) -> socket.socket:
    """A request sent over a plain socket, so that the test decides when it disconnects."""
    host, port = url.removeprefix("http://").removesuffix("/v1").split(":")
    sock = socket.create_connection((host, int(port)))
    payload = json.dumps(body).encode()
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    )
    sock.sendall(head.encode() + payload)
    return sock


def test_a_full_queue_is_a_429_with_retry_after_and_a_waiting_client_can_leave(client, url):
    before = health(url)["requests"]
    running = client.chat.completions.create(
        model="tiny", messages=USER, response_format=LONG_ANSWER, max_tokens=4000, stream=True
    )
    next(iter(running))  # it holds the model
    waiting = _raw_request(url, {"model": "tiny", "messages": USER, "max_tokens": 2})
    wait_for(url, lambda s: s["queue"]["waiting"] == 1)

    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="tiny", messages=USER, max_tokens=2)
    assert int(info.value.response.headers["retry-after"]) >= 1
    assert _error(info)["code"] == "queue_full"

    waiting.close()  # the waiting client leaves: its place is given up
    state = wait_for(url, lambda s: s["queue"]["waiting"] == 0)
    assert state["requests"]["cancelled"] == before["cancelled"] + 1
    running.close()  # and the running one: the model is free again within a token
    state = wait_for(url, lambda s: s["queue"]["running"] == 0)
    assert state["requests"]["cancelled"] == before["cancelled"] + 2
    assert state["requests"]["rejected"] == before["rejected"] + 1
    assert client.chat.completions.create(model="tiny", messages=USER, max_tokens=2).choices


def test_a_client_that_disconnects_mid_stream_cancels_its_generation(client, url, caplog):
    caplog.set_level(logging.INFO, logger="agent.server")
    before = health(url)["requests"]
    stream = client.chat.completions.create(
        model="tiny", messages=USER, response_format=LONG_ANSWER, max_tokens=4000, stream=True
    )
    pieces = iter(stream)
    next(pieces)
    next(pieces)  # text is flowing
    stream.close()
    state = wait_for(url, lambda s: s["requests"]["cancelled"] == before["cancelled"] + 1)
    assert state["queue"]["running"] == 0 and state["requests"]["completed"] == before["completed"]
    # It stopped long before the 1,200 tokens the answer needs.
    (record,) = [r for r in caplog.records if "cancelled after" in r.getMessage()]
    assert record.edge_agent_generated < 1200
    # The model is free: the next request is served.
    assert client.chat.completions.create(model="tiny", messages=USER, max_tokens=3).choices


def test_a_non_streamed_request_is_cancelled_when_its_client_leaves(url):
    before = health(url)["requests"]
    sock = _raw_request(url, {"model": "tiny", "messages": USER, "max_tokens": 4000,
                              "response_format": LONG_ANSWER})  # fmt: skip
    wait_for(url, lambda s: s["queue"]["running"] == 1)
    sock.close()
    state = wait_for(url, lambda s: s["requests"]["cancelled"] == before["cancelled"] + 1)
    assert state["queue"]["running"] == 0


# ------------------------------------------------------------------ 500
def test_an_internal_failure_is_a_500_and_the_server_keeps_serving():
    def reply(request):
        if request.messages[-1].content == "boom":
            raise RuntimeError("the engine broke")
        if request.messages[-1].content == "bad call":
            return Reply(calls=[("weather", {"town": "Oslo"})])  # not the tool's parameters
        return Reply(text="fine")

    with serve_in_background(ScriptedModel(reply, name="scripted")) as server:
        client = _client(server.url)
        with pytest.raises(openai.InternalServerError) as info:
            client.chat.completions.create(
                model="scripted", messages=[{"role": "user", "content": "boom"}]
            )
        assert "RuntimeError: the engine broke" in _error(info)["message"]
        # An invalid call is never passed on as valid.
        with pytest.raises(openai.InternalServerError) as info:
            client.chat.completions.create(
                model="scripted", messages=[{"role": "user", "content": "bad call"}],
                tools=[WEATHER],
            )  # fmt: skip
        assert "does not validate" in _error(info)["message"]
        # Mid-stream, the failure arrives as an error event.
        stream = client.chat.completions.create(
            model="scripted", messages=[{"role": "user", "content": "boom"}], stream=True
        )
        with pytest.raises(openai.APIError, match="the engine broke"):
            list(stream)
        reply = client.chat.completions.create(
            model="scripted", messages=[{"role": "user", "content": "hello"}]
        )
        assert reply.choices[0].message.content == "fine"
        assert health(server.url)["requests"]["failed"] == 3


def test_concurrent_requests_queue_and_all_succeed(client, url):
    results: list[int] = []
    errors: list[BaseException] = []

    def one(seed: int) -> None:
        try:
            reply = _client(url).chat.completions.create(
                model="tiny", messages=USER, max_tokens=3, seed=seed
            )
            results.append(reply.usage.completion_tokens)
        except BaseException as exc:  # reported below
            errors.append(exc)

    # One runs, one waits (max_queue=1): two at a time never overflow the queue.
    threads = [threading.Thread(target=one, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(results) == 2


def test_text_of_an_unconstrained_model_that_looks_like_a_bad_call_stays_text():
    # A local model without LFM2's call tokens writes calls as text in auto mode, with
    # no grammar: one that does not validate is its text, not a call (and not a 500).
    def reply(request):
        return Reply(text='[{"name": "weather", "arguments": {}}]',
                     calls=[("weather", {"town": "Oslo"})])  # fmt: skip

    unconstrained = ScriptedModel(reply, name="local", provider="mlx")
    with serve_in_background(unconstrained) as server:
        choice = (
            _client(server.url)
            .chat.completions.create(model="local", messages=USER, tools=[WEATHER])
            .choices[0]
        )
    assert choice.message.tool_calls is None and choice.finish_reason == "stop"
    assert choice.message.content == '[{"name": "weather", "arguments": {}}]'
