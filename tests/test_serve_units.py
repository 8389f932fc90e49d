"""The server's pieces on their own: request parsing, turn memory, stop sequences, the
chunk encoder and the scheduler's admission (no model, no HTTP)."""

from __future__ import annotations

import asyncio
import json

import pytest

from agent.messages import UserMessage
from agent.sampling import SamplingParams
from agent.server.errors import APIError, from_exception
from agent.server.protocol import ChatCompletionRequest, check_supported, parse_body
from agent.server.responses import ChunkWriter, Envelope, chunk, tool_call_deltas
from agent.server.scheduler import QueueFull, Scheduler
from agent.server.stops import StopScanner, calls_before_stop
from agent.server.translate import plan_chat
from agent.server.turns import TurnMemory
from agent.tool_parser import CALL_END, CALL_START
from schemas.errors import UnsupportedSchemaError

TOOL = {
    "type": "function",
    "function": {
        "name": "weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def _request(**fields) -> ChatCompletionRequest:
    return parse_body(ChatCompletionRequest, {"messages": [{"role": "user", "content": "hi"}],
                                              **fields})  # fmt: skip


# ---------------------------------------------------------------- protocol
def test_a_malformed_body_names_the_field_as_the_client_wrote_it():
    cases = {
        "messages.0.role": {"messages": [{"role": "bot", "content": "x"}]},
        "tool_choice.function.name": {"messages": [{"role": "user", "content": "x"}],
                                      "tool_choice": {"type": "function", "function": {}}},
        "response_format.json_schema.name": {"messages": [{"role": "user", "content": "x"}],
                                             "response_format": {"type": "json_schema",
                                                                 "json_schema": {"name": 3}}},
        "max_tokens": {"messages": [{"role": "user", "content": "x"}], "max_tokens": 0},
    }  # fmt: skip
    for param, body in cases.items():
        with pytest.raises(APIError) as info:
            parse_body(ChatCompletionRequest, body)
        assert info.value.status == 400 and info.value.param == param
    with pytest.raises(APIError, match="JSON object"):
        parse_body(ChatCompletionRequest, [1, 2])


def test_unsupported_parameters_are_refused_and_neutral_ones_accepted():
    check_supported(_request(n=1, presence_penalty=0, logprobs=False))
    refused = [
        ({"n": 3}, "n"),
        ({"frequency_penalty": 1.0}, "frequency_penalty"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"stream_options": {"include_usage": True}}, "stream_options"),
    ]
    for fields, param in refused:
        with pytest.raises(APIError) as info:
            check_supported(_request(**fields))
        assert info.value.param == param


def test_schema_errors_are_400s_with_a_code_and_others_500s():
    error = from_exception(UnsupportedSchemaError("pattern", "#/x", "two patterns"))
    assert (error.status, error.code) == (400, "unsupported_schema")
    assert "pattern" in error.message and "#/x" in error.message
    internal = from_exception(KeyError("boom"))
    assert internal.status == 500 and internal.type == "server_error"
    assert internal.body()["error"]["message"] == "internal error: KeyError: 'boom'"


# ---------------------------------------------------------------- translate
def test_a_request_becomes_the_step_the_agent_loop_would_make():
    request = _request(
        messages=[{"role": "developer", "content": "Be brief."},
                  {"role": "user", "content": "Weather?"}],
        tools=[TOOL], tool_choice={"type": "function", "function": {"name": "weather"}},
        parallel_tool_calls=False, temperature=0.0, seed=3, max_completion_tokens=40,
        stop="END", response_format={"type": "json_object"},
    )  # fmt: skip
    plan = plan_chat(request, [TOOL], SamplingParams(), TurnMemory())
    step = plan.step
    assert step.system.startswith("Be brief.\nOutput function calls as JSON.")
    assert "follows this JSON Schema" in step.system
    assert step.messages == (UserMessage("Weather?"),)
    assert (step.tool_choice, step.tool_name, step.max_parallel_calls) == ("required", "weather", 1)
    assert step.call_schema["properties"]["name"] == {"const": "weather"}
    assert step.sampling.temperature == 0.0 and step.sampling.seed == 3
    assert step.answer.json_schema == {"type": "object"}
    assert (plan.max_tokens, plan.stops) == (40, ("END",))
    # A system prompt that already says it is not told twice (an Agent behind RemoteChatModel).
    again = plan_chat(_request(messages=[{"role": "system", "content": step.system},
                                         {"role": "user", "content": "x"}],
                               tools=[TOOL], response_format={"type": "json_object"}),
                      [TOOL], SamplingParams(), TurnMemory())  # fmt: skip
    assert again.step.system == step.system


def test_tool_mistakes_are_400s():
    with pytest.raises(APIError, match="not among the tools"):
        plan_chat(_request(tools=[TOOL], tool_choice={"type": "function",
                                                      "function": {"name": "x"}}),
                  [TOOL], SamplingParams(), TurnMemory())  # fmt: skip
    bad = {"type": "function", "function": {"name": "f", "parameters": {"type": "string"}}}
    with pytest.raises(APIError) as info:
        plan_chat(_request(tools=[bad]), [bad], SamplingParams(), TurnMemory())
    assert info.value.param == "tools"
    with pytest.raises(APIError, match="not JSON"):
        plan_chat(_request(messages=[
            {"role": "user", "content": "x"},
            {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function",
                                                  "function": {"name": "f", "arguments": "{"}}]},
        ]), [], SamplingParams(), TurnMemory())  # fmt: skip


# ---------------------------------------------------------------- turn memory
def test_a_turn_sent_back_as_returned_gets_its_generated_text_back():
    memory = TurnMemory()
    before = [{"role": "user", "content": "Weather?"}]
    returned = {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function",
         "function": {"name": "weather", "arguments": '{"city": "Oslo"}'}}]}  # fmt: skip
    raw = f'{CALL_START}[{{"name":"weather","arguments":{{"city":"Oslo"}}}}]{CALL_END}'
    memory.remember(before, returned, raw)
    sent_back = {**returned, "content": "", "refusal": None}  # as an SDK echoes it
    follow = [*before, sent_back, {"role": "tool", "tool_call_id": "call_1", "content": "sun"}]
    restored = memory.restore(follow)
    assert restored[1] == {"role": "assistant", "content": raw}
    assert restored[2] == follow[2]
    # The same turn in another conversation is not this one.
    other = [{"role": "user", "content": "Other?"}, sent_back]
    assert memory.restore(other)[1] is sent_back


def test_turn_memory_is_bounded():
    memory = TurnMemory(max_entries=2)
    for i in range(3):
        memory.remember([{"role": "user", "content": str(i)}],
                        {"role": "assistant", "content": "a"}, f"raw {i}")  # fmt: skip
    assert len(memory) == 2
    first = [{"role": "user", "content": "0"}, {"role": "assistant", "content": "a"}]
    assert memory.restore(first)[1]["content"] == "a"  # forgotten: rendered as sent


# ---------------------------------------------------------------- stops
def test_the_stop_scanner_holds_back_what_may_start_a_stop_sequence():
    scanner = StopScanner(("END",))
    out = [scanner.feed(p) for p in ("Hello E", "N", "d of it; EN", "D and more")]
    assert out == ["Hello ", "", "ENd of it; ", ""]
    assert scanner.hit and scanner.flush() == ""
    quiet = StopScanner(("END",))
    assert quiet.feed("no stop E") == "no stop " and quiet.flush() == "E"


def test_calls_after_the_stop_are_not_returned():
    block = (
        f'{CALL_START}[{{"name":"f","arguments":{{}}}},{{"name":"g","arguments":{{}}}}]{CALL_END}'
    )
    assert calls_before_stop(f"text {block} more STOP {block}", ("STOP",)) == 2
    assert calls_before_stop(f"STOP {block}", ("STOP",)) == 0
    inside = f'{CALL_START}[{{"name":"f","arguments":{{"s":"STOP"}}}}]{CALL_END}'
    assert calls_before_stop(f"{inside} after", ("STOP",)) == 1  # a payload is not text
    assert calls_before_stop("no calls here STOP", ("STOP",)) is None


# ---------------------------------------------------------------- chunks
def test_the_fast_text_chunk_is_the_generic_chunk():
    envelope = Envelope.new("tiny")
    for usage in (False, True):
        writer = ChunkWriter(envelope, usage)
        text = 'a "quoted" \\ line\nwith ünïcode'
        fast = json.loads(writer.text("content", text)[len(b"data: ") :])
        assert fast == chunk(envelope, {"content": text}, include_usage=usage)
        reasoning = json.loads(writer.text("reasoning_content", "hm")[len(b"data: ") :])
        assert reasoning["choices"][0]["delta"] == {"reasoning_content": "hm"}


def test_tool_calls_stream_as_a_head_then_the_arguments():
    calls = [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}]
    head, body = tool_call_deltas(calls)
    assert head["tool_calls"][0] == {"index": 0, "id": "c1", "type": "function",
                                     "function": {"name": "f", "arguments": ""}}  # fmt: skip
    assert body["tool_calls"][0] == {"index": 0, "function": {"arguments": '{"a":1}'}}


# ---------------------------------------------------------------- scheduler
def test_the_queue_admits_in_order_and_refuses_when_full():
    async def scenario() -> list[str]:
        scheduler = Scheduler(max_waiting=1)
        order: list[str] = []
        first = scheduler.admit()
        await scheduler.wait(first)
        second = scheduler.admit()  # waits
        with pytest.raises(QueueFull) as full:
            scheduler.admit()
        assert full.value.retry_after >= 1 and scheduler.counters.rejected == 1

        async def run(ticket, name):
            await scheduler.wait(ticket)
            order.append(name)
            scheduler.release(ticket)

        task = asyncio.ensure_future(run(second, "second"))
        await asyncio.sleep(0)
        assert scheduler.waiting == 1 and not task.done()
        order.append("first")
        scheduler.release(first)
        scheduler.release(first)  # twice is once
        await task
        assert (scheduler.running, scheduler.waiting) == (0, 0)
        return order

    assert asyncio.run(scenario()) == ["first", "second"]


def test_a_waiting_request_that_is_cancelled_gives_up_its_place():
    async def scenario() -> None:
        scheduler = Scheduler(max_waiting=4)
        holder = scheduler.admit()
        await scheduler.wait(holder)
        waiting = scheduler.admit()
        task = asyncio.ensure_future(scheduler.wait(waiting))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert scheduler.waiting == 0
        scheduler.cancel_all()
        assert holder.cancel.is_set() and not waiting.cancel.is_set()  # withdrawn already
        scheduler.release(holder)
        assert scheduler.running == 0

    asyncio.run(scenario())
