"""`edge-agent serve` through the official `openai` client: chat, streaming, tools, JSON.

A real uvicorn serves the random-weight `tiny` model on a free port. Its text is noise,
but its structure is not: every tool call's arguments parse and validate against the
tool's parameters, every `json_schema` answer validates, and finish reasons say what
happened. Seeds make runs reproducible, so streamed and whole answers can be compared.
"""

from __future__ import annotations

import json

import httpx
import numpy as np
import pytest
from openai import OpenAI
from pydantic import BaseModel
from serve_helpers import TIME, TOOLS, WEATHER, assert_valid_calls, health

from agent.engines.local import LocalChatModel
from agent.server import ServerConfig
from agent.server.serve import serve_in_background

USER = [{"role": "user", "content": "What is the weather in Oslo?"}]


@pytest.fixture(scope="module")
def url(tiny):
    tiny.reset_cache()
    with serve_in_background(LocalChatModel.for_model(tiny), ServerConfig()) as server:
        yield server.url
    tiny.reset_cache()


@pytest.fixture
def client(url):
    return OpenAI(base_url=url, api_key="not-needed", max_retries=0, timeout=120)


def test_models_and_health(client, url):
    assert client.models.list().data[0].id == "tiny"
    state = health(url)
    assert state["status"] == "ok" and state["model"] == "tiny"
    assert state["queue"] == {"running": 0, "waiting": 0, "max_waiting": 32}


def test_plain_chat(client):
    reply = client.chat.completions.create(
        model="tiny", messages=USER, max_tokens=12, seed=1, temperature=0.5
    )
    choice = reply.choices[0]
    assert choice.message.role == "assistant" and isinstance(choice.message.content, str)
    assert choice.finish_reason in ("stop", "length") and not choice.message.tool_calls
    usage = reply.usage
    assert 0 < usage.completion_tokens <= 12
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    if choice.finish_reason == "length":
        assert usage.completion_tokens == 12
    extension = usage.model_extra["edge_agent"]
    assert extension["ttft_ms"] > 0 and extension["queue_wait_ms"] >= 0
    assert extension["decode_tokens_per_s"] > 0 and extension["grammar"] is None


def test_streaming_gives_the_same_answer_in_chunks(client):
    kwargs = {"model": "tiny", "messages": USER, "max_tokens": 16, "seed": 7}
    whole = client.chat.completions.create(**kwargs)
    chunks = list(
        client.chat.completions.create(
            **kwargs, stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == whole.choices[0].finish_reason and set(finishes[:-1]) == {None}
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens
    assert all(c.usage is None for c in chunks[:-1])


def test_required_tool_call_validates(client):
    for seed in range(3):
        reply = client.chat.completions.create(
            model="tiny", messages=USER, tools=TOOLS, tool_choice="required", max_tokens=80,
            seed=seed,
        )  # fmt: skip
        choice = reply.choices[0]
        assert choice.finish_reason == "tool_calls"
        assert_valid_calls(choice.message.tool_calls)
        assert reply.usage.model_extra["edge_agent"]["grammar"]


def test_named_tool_choice_calls_that_tool(client):
    reply = client.chat.completions.create(
        model="tiny",
        messages=USER,
        tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": "time_in"}},
        max_tokens=80,
        seed=3,
    )
    calls = assert_valid_calls(reply.choices[0].message.tool_calls)
    assert {name for name, _ in calls} == {"time_in"}


def test_parallel_calls_come_as_several_valid_calls_and_can_be_turned_off(client):
    counts = {}
    for parallel in (True, False):
        counts[parallel] = []
        for seed in range(8):
            reply = client.chat.completions.create(
                model="tiny", messages=USER, tools=TOOLS, tool_choice="required",
                max_tokens=160, seed=seed, temperature=1.0, parallel_tool_calls=parallel,
            )  # fmt: skip
            counts[parallel].append(len(assert_valid_calls(reply.choices[0].message.tool_calls)))
    assert max(counts[True]) >= 2, counts
    assert max(counts[False]) == 1, counts


def test_streamed_tool_calls_use_openai_chunks(client):
    kwargs = {"model": "tiny", "messages": USER, "tools": [WEATHER], "max_tokens": 60,
              "tool_choice": "required", "seed": 2}  # fmt: skip
    whole = client.chat.completions.create(**kwargs)
    calls: dict[int, dict[str, str]] = {}
    finish = None
    for chunk in client.chat.completions.create(**kwargs, stream=True):
        for fragment in chunk.choices[0].delta.tool_calls or []:
            call = calls.setdefault(fragment.index, {"id": "", "name": "", "arguments": ""})
            call["id"] += fragment.id or ""
            call["name"] += (fragment.function and fragment.function.name) or ""
            call["arguments"] += (fragment.function and fragment.function.arguments) or ""
        finish = chunk.choices[0].finish_reason or finish
    assert finish == "tool_calls"
    expected = whole.choices[0].message.tool_calls
    assert [(c["name"], json.loads(c["arguments"])) for _, c in sorted(calls.items())] == [
        (c.function.name, json.loads(c.function.arguments)) for c in expected
    ]
    assert all(c["id"].startswith("call_") for c in calls.values())


def test_auto_choice_may_answer_or_call_and_none_never_calls(client):
    reply = client.chat.completions.create(
        model="tiny", messages=USER, tools=TOOLS, tool_choice="none", max_tokens=20, seed=1
    )
    assert not reply.choices[0].message.tool_calls
    assert reply.choices[0].finish_reason in ("stop", "length")
    for seed in range(3):
        choice = client.chat.completions.create(
            model="tiny", messages=USER, tools=TOOLS, max_tokens=60, seed=seed
        ).choices[0]
        if choice.message.tool_calls:
            assert choice.finish_reason == "tool_calls"
            assert_valid_calls(choice.message.tool_calls)
        else:
            assert choice.finish_reason in ("stop", "length")


class Contact(BaseModel):
    name: str
    age: int
    email: str | None = None


def test_parse_with_a_pydantic_model(client):
    for seed in range(3):
        reply = client.chat.completions.parse(
            model="tiny",
            messages=[{"role": "user", "content": "Ann Lee is 31."}],
            response_format=Contact,
            max_tokens=200,
            seed=seed,
        )
        choice = reply.choices[0]
        assert choice.finish_reason == "stop"
        assert isinstance(choice.message.parsed, Contact)
        assert Contact.model_validate_json(choice.message.content) == choice.message.parsed


def test_json_object_and_json_schema_answers(client):
    reply = client.chat.completions.create(
        model="tiny", messages=USER, max_tokens=40, seed=1,
        response_format={"type": "json_object"},
    )  # fmt: skip
    assert isinstance(json.loads(reply.choices[0].message.content), dict)
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"],
              "additionalProperties": False}  # fmt: skip
    reply = client.chat.completions.create(
        model="tiny", messages=USER, max_tokens=40, seed=1,
        response_format={"type": "json_schema",
                         "json_schema": {"name": "ok", "schema": schema, "strict": True}},
    )  # fmt: skip
    assert set(json.loads(reply.choices[0].message.content)) == {"ok"}


def test_an_answer_with_tools_is_a_call_or_valid_json(client):
    schema = {"type": "object", "properties": {"temp": {"type": "integer"}}, "required": ["temp"]}
    for seed in range(4):
        choice = client.chat.completions.create(
            model="tiny", messages=USER, tools=TOOLS, max_tokens=80, seed=seed,
            response_format={"type": "json_schema", "json_schema": {"name": "t", "schema": schema}},
        ).choices[0]  # fmt: skip
        if choice.message.tool_calls:
            assert_valid_calls(choice.message.tool_calls)
        else:
            assert isinstance(json.loads(choice.message.content)["temp"], int)


def test_stop_sequences_end_the_text_before_them(client):
    kwargs = {"model": "tiny", "messages": USER, "max_tokens": 24, "seed": 5}
    full = client.chat.completions.create(**kwargs).choices[0].message.content
    stop = full[10:13]
    cut = full[: full.index(stop)]
    stopped = client.chat.completions.create(**kwargs, stop=[stop])
    assert stopped.choices[0].message.content == cut
    assert stopped.choices[0].finish_reason == "stop"
    streamed = client.chat.completions.create(**kwargs, stop=stop, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in streamed) == cut


def test_sampling_extensions_are_accepted(client):
    reply = client.chat.completions.create(
        model="tiny", messages=USER, max_tokens=8, seed=1, top_p=0.9,
        extra_body={"min_p": 0.1, "repetition_penalty": 1.1, "top_k": 20},
    )  # fmt: skip
    assert reply.usage.completion_tokens >= 1


def test_a_conversation_sent_back_extends_the_prompt_cache(client):
    first = client.chat.completions.create(
        model="tiny", messages=USER, tools=TOOLS, tool_choice="required", max_tokens=60, seed=4
    )
    message = first.choices[0].message
    calls = message.tool_calls
    conversation = [*USER, message.model_dump(exclude_none=True)]
    conversation += [
        {"role": "tool", "tool_call_id": c.id, "content": "sunny, 21 C"} for c in calls
    ]
    second = client.chat.completions.create(
        model="tiny", messages=conversation, tools=TOOLS, tool_choice="none", max_tokens=8,
        seed=4,
    )  # fmt: skip
    # The call block is reused exactly as it was generated, though the client sent it
    # back as OpenAI tool_calls (LFM2's cache cannot be rewound: a different rendering
    # would reuse nothing). Only the tokens the grammar forced at the very end, which
    # the model never had to read, are prefilled with the new turn.
    history = first.usage.prompt_tokens + first.usage.completion_tokens
    cached = second.usage.prompt_tokens_details.cached_tokens
    assert first.usage.prompt_tokens < cached < history

    # Another conversation runs in between: the first one's cache is kept aside.
    client.chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": "Something else"}], max_tokens=4
    )
    conversation += [
        {"role": "assistant", "content": second.choices[0].message.content or ""},
        {"role": "user", "content": "And tomorrow?"},
    ]
    third = client.chat.completions.create(
        model="tiny", messages=conversation, tools=TOOLS, max_tokens=4
    )
    # Sampled text: all of it was fed back but the last token.
    cached = third.usage.prompt_tokens_details.cached_tokens
    assert cached == second.usage.prompt_tokens + second.usage.completion_tokens - 1


def test_an_edited_turn_is_rendered_as_sent(client):
    first = client.chat.completions.create(model="tiny", messages=USER, max_tokens=6, seed=2)
    edited = [*USER, {"role": "assistant", "content": "Something I did not say."},
              {"role": "user", "content": "Go on."}]  # fmt: skip
    second = client.chat.completions.create(model="tiny", messages=edited, max_tokens=4)
    # Not what the model generated: rendered as sent, and prefilled anew (LFM2's conv
    # state cannot be rewound to the user turn).
    assert first.usage.prompt_tokens_details.cached_tokens == 0
    assert second.usage.prompt_tokens_details.cached_tokens == 0


def test_time_tool_round_trip(client):
    reply = client.chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": "Time in Oslo?"}], tools=[TIME],
        tool_choice="required", max_tokens=60, seed=9,
    )  # fmt: skip
    for name, arguments in assert_valid_calls(reply.choices[0].message.tool_calls):
        assert name == "time_in" and isinstance(arguments["hours24"], bool)


def test_embeddings_are_the_minilm_encoder_s(client, url):
    from agent.errors import ModelUnavailableError
    from agent.retriever.embeddings import load_embedder

    try:
        embedder = load_embedder()
    except ModelUnavailableError as exc:
        pytest.skip(f"all-MiniLM-L6-v2 wheel not available: {exc}")
    texts = ["The weather is lovely today.", "He drove to the stadium."]
    reply = client.embeddings.create(model="sentence-transformers/all-MiniLM-L6-v2", input=texts)
    vectors = np.array([d.embedding for d in reply.data], dtype=np.float32)
    np.testing.assert_allclose(vectors, embedder.embed(texts), atol=1e-5)
    assert reply.usage.prompt_tokens == sum(embedder.count_tokens(texts))
    # The float encoding (the SDK asks for base64) carries the same numbers.
    body = httpx.post(url + "/embeddings", json={"input": texts[0], "encoding_format": "float"})
    np.testing.assert_allclose(body.json()["data"][0]["embedding"], vectors[0], atol=1e-6)
    wrong = httpx.post(url + "/embeddings", json={"input": "x", "model": "tiny"})
    assert wrong.status_code == 404 and "all-MiniLM-L6-v2" in wrong.json()["error"]["message"]
