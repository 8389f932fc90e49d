"""The agent loop end to end on the random-weight tiny model (Python API)."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Literal

import pytest
from pydantic import BaseModel

from agent import Agent
from agent.engines.local import LocalChatModel
from agent.engines.scripted import Reply, ScriptedModel
from agent.errors import UserError
from agent.events import (
    FinalEvent,
    StatsEvent,
    TextDelta,
    ToolCallEvent,
    ToolResultEvent,
)
from agent.messages import ToolMessage
from agent.prompting import render
from agent.sampling import SamplingParams
from tools import ToolRegistry, tool


def sampling(seed: int) -> SamplingParams:
    return SamplingParams(temperature=1.0, seed=seed)


@tool
def weather(city: Literal["Paris", "Oslo", "Lima"], unit: Literal["c", "f"] = "c") -> str:
    """Current weather in a city."""
    return f"{city}: 21 {unit}"


@tool
def lookup(key: Literal["a", "b"]) -> str:
    """Look a key up."""
    return f"value of {key}"


@tool
def ping() -> str:
    """Check that the service is up."""
    return "pong"


@tool
def explode(reason: Literal["disk", "net"]) -> str:
    """A tool that always fails."""
    raise RuntimeError(f"{reason} is on fire")


def test_required_calls_name_registered_tools_with_valid_arguments(tiny):
    registry = ToolRegistry([weather, lookup])
    seen = 0
    for seed in range(3):
        agent = Agent(
            tiny,
            registry,
            tool_choice="required",
            reset_tool_choice=False,
            max_steps=2,
            max_identical_calls=50,
            sampling=sampling(seed),
        )
        result = agent.run("What is the weather in Paris?")
        calls = result.of_type(ToolCallEvent)
        assert len(calls) >= 2  # every step called
        for call in calls:
            assert call.name in registry.names()
            assert registry.get(call.name).validation_errors(call.arguments) == []
        results = result.of_type(ToolResultEvent)
        assert [r.call_id for r in results] == [c.call_id for c in calls]
        assert all(r.error is None for r in results)
        assert result.stopped_by == "max_steps"
        seen += len(calls)
    assert seen >= 6


def test_tool_name_choice_calls_only_that_tool(tiny):
    agent = Agent(tiny, [weather, lookup], tool_choice="lookup", max_steps=1, sampling=sampling(4))
    calls = agent.run("Look up a").of_type(ToolCallEvent)
    assert calls and {c.name for c in calls} == {"lookup"}


def test_a_raising_tool_yields_an_error_result_and_the_loop_continues(tiny):
    agent = Agent(
        tiny,
        [explode],
        tool_choice="explode",
        reset_tool_choice=False,
        max_steps=2,
        max_identical_calls=50,
        sampling=sampling(1),
    )
    result = agent.run("Break something")
    failures = result.of_type(ToolResultEvent)
    assert failures and all("is on fire" in r.error for r in failures)
    assert all(r.content.startswith("Error:") for r in failures)
    steps = [e.step for e in result.of_type(StatsEvent)]
    assert steps == [1, 2]  # the model saw the error and took another step
    tool_turns = [m for m in agent.messages if isinstance(m, ToolMessage)]
    assert tool_turns and "is on fire" in tool_turns[0].content
    assert tool_turns[0].error is not None and "is on fire" in tool_turns[0].error


def test_max_steps_stops_the_run_and_says_why(tiny):
    agent = Agent(
        tiny,
        [weather],
        tool_choice="required",
        reset_tool_choice=False,
        max_steps=3,
        max_identical_calls=50,
        sampling=sampling(2),
    )
    result = agent.run("Weather?")
    assert result.stopped_by == "max_steps"
    assert "3 step" in result.final.reason
    assert result.stats.steps == 3
    assert isinstance(result.events[-1], FinalEvent)


def test_repeated_identical_calls_stop_the_run(tiny):
    runs = []

    @tool
    def heartbeat() -> str:
        """Report liveness."""
        runs.append(1)
        return "alive"

    agent = Agent(
        tiny,
        [heartbeat],
        tool_choice="required",
        reset_tool_choice=False,
        max_steps=10,
        max_identical_calls=2,
        sampling=sampling(0),
    )
    result = agent.run("Are you there?")
    assert result.stopped_by == "repeated_call"
    assert "heartbeat" in result.final.reason and "2 step" in result.final.reason
    assert result.stats.steps == 3  # the third step repeated the call once too often
    results = result.of_type(ToolResultEvent)
    assert {r.step for r in results} == {1, 2}  # the third step's calls never ran
    assert len(runs) == len(results)
    assert {c.step for c in result.of_type(ToolCallEvent)} == {1, 2, 3}


def test_denied_approval_is_respected(tiny):
    ran: list[str] = []

    @tool(requires_approval=True)
    def delete_everything(target: Literal["tmp", "home"]) -> str:
        """Delete files."""
        ran.append(target)
        return "deleted"

    asked: list[str] = []

    def deny(call, tool_):
        asked.append(call.name)
        return False

    agent = Agent(
        tiny,
        [delete_everything],
        tool_choice="required",
        max_steps=1,
        max_identical_calls=50,
        approve=deny,
        sampling=sampling(0),
    )
    result = agent.run("Clean up")
    results = result.of_type(ToolResultEvent)
    assert results and all(r.error == "denied by the user" for r in results)
    assert ran == [] and asked

    approved = Agent(
        tiny,
        [delete_everything],
        tool_choice="required",
        max_steps=1,
        max_identical_calls=50,
        approve=lambda call, tool_: True,
        sampling=sampling(0),
    )
    assert all(r.error is None for r in approved.run("Clean up").of_type(ToolResultEvent))
    assert ran


def test_without_an_approval_callback_approval_tools_do_not_run(tiny):
    ran = []

    @tool(requires_approval=True)
    def launch(stage: Literal["one"]) -> str:
        """Launch."""
        ran.append(stage)
        return "launched"

    agent = Agent(tiny, [launch], tool_choice="required", max_steps=1, max_identical_calls=50)
    result = agent.run("Go")
    assert ran == []
    assert all("requires approval" in r.error for r in result.of_type(ToolResultEvent))


def test_parallel_calls_overlap_in_time(tiny):
    """Every call waits until all calls of its step have started: only concurrent
    execution can finish them (sequential execution would time out every call)."""
    state = {"expected": 0, "started": 0, "active": 0, "max_active": 0}
    everyone_started: dict[str, asyncio.Event] = {}

    @tool(timeout=20)
    async def probe(tag: Literal["x", "y"]) -> str:
        """Probe a sensor."""
        event = everyone_started.setdefault("e", asyncio.Event())
        state["started"] += 1
        state["active"] += 1
        state["max_active"] = max(state["max_active"], state["active"])
        if state["started"] >= state["expected"]:
            event.set()
        await asyncio.wait_for(event.wait(), timeout=15)
        state["active"] -= 1
        return tag

    # Two calls in one step, scripted: the behaviour under test is the loop's, so no
    # seed has to happen to make the random model call twice.
    model = ScriptedModel([Reply(calls=[("probe", {"tag": "x"}), ("probe", {"tag": "y"})])])
    state["expected"] = 2
    agent = Agent(model, [probe], tool_choice="probe", max_steps=1)
    result = asyncio.run(agent.arun("Probe both sensors"))
    results = result.of_type(ToolResultEvent)
    assert [r.content for r in results] == ["x", "y"]
    assert all(r.error is None for r in results), [r.error for r in results]
    assert state["max_active"] == 2


def test_each_step_prefills_only_its_new_turn(tiny):
    tiny.reset_cache()
    agent = Agent(
        tiny,
        [weather],
        tool_choice="required",
        reset_tool_choice=False,
        max_steps=3,
        max_identical_calls=50,
        sampling=sampling(3),
    )
    result = agent.run("Weather in Lima and Oslo?")
    stats = [e.stats for e in result.of_type(StatsEvent)]
    assert len(stats) == 3
    assert stats[0].cached_prompt_tokens == 0
    # Rebuild each step's prompt from the saved conversation to know its new turn.
    tools = agent.registry.openai_tools()
    chat = [m.to_dict() for m in agent.messages]
    assistant_at = [i for i, m in enumerate(chat) if m["role"] == "assistant"]
    for k in (1, 2):
        before_prev = render(tiny, agent.system, chat[: assistant_at[k - 1]], tools)
        prev_text = before_prev + chat[assistant_at[k - 1]]["content"]
        prompt = render(tiny, agent.system, chat[: assistant_at[k]], tools)
        assert prompt.startswith(prev_text)
        new_turn = tiny.tokenizer.encode(prompt[len(prev_text) :], add_special_tokens=False)
        prev, cur = stats[k - 1], stats[k]
        assert cur.prompt_tokens == prev.prompt_tokens + prev.generated_tokens + len(new_turn)
        # The cache holds all of step k-1 but its tail: the last sampled token, or the
        # grammar-forced run that ended the call (`"}]<|tool_call_end|>`), is never fed.
        unfed = prev.prompt_tokens + prev.generated_tokens - cur.cached_prompt_tokens
        assert 1 <= unfed <= 8
        assert cur.prefilled_tokens == len(new_turn) + unfed


class Verdict(BaseModel):
    answer: Literal["yes", "no"]
    confidence: Literal[1, 2, 3]


def test_response_format_constrains_the_final_answer(tiny):
    agent = Agent(tiny, response_format=Verdict, max_tokens=200, sampling=sampling(0))
    result = agent.run("Is Oslo in Norway?")
    assert result.stopped_by is None
    assert isinstance(result.output, Verdict)
    assert Verdict.model_validate_json(result.content) == result.output
    assert json.loads(json.dumps(result.final.to_dict()))["output"] == result.output.model_dump()


def test_response_format_works_together_with_tools():
    """The loop: a forced call first, then the constrained answer ends the run."""
    model = ScriptedModel(
        [Reply(calls=[("lookup", {"key": "a"})]),
         Reply(answer={"answer": "yes", "confidence": 2})]
    )  # fmt: skip
    agent = Agent(model, [lookup], tool_choice="required", response_format=Verdict, max_steps=4)
    result = agent.run("Look up a, then answer")
    calls = result.of_type(ToolCallEvent)
    assert [c.step for c in calls] == [1]  # the first step had to call
    assert result.stopped_by is None and result.stats.steps == 2
    assert result.output == Verdict(answer="yes", confidence=2)
    assert model.requests[0].tool_choice == "required" and model.requests[1].tool_choice == "auto"


def test_response_format_with_tools_on_the_random_model_is_always_valid(tiny):
    """Whatever the random weights do in each step (call or answer), it is valid."""
    for seed in range(2):
        agent = Agent(tiny, [lookup], tool_choice="required", response_format=Verdict,
                      max_steps=3, max_tokens=400, sampling=sampling(seed))  # fmt: skip
        result = agent.run("Look up a, then answer")
        assert result.of_type(ToolCallEvent)[0].step == 1
        assert all(r.error is None for r in result.of_type(ToolResultEvent))
        if result.stopped_by is None:
            assert isinstance(result.output, Verdict)
        else:
            assert result.stopped_by in ("max_steps", "repeated_call")


def test_bad_agent_options_are_user_errors(tiny):
    with pytest.raises(UserError, match="needs at least one tool"):
        Agent(tiny, tool_choice="required")
    with pytest.raises(UserError, match="max_steps"):
        Agent(tiny, max_steps=0)
    with pytest.raises(UserError, match="empty"):
        asyncio.run(Agent(tiny).arun("  "))


def test_max_parallel_calls_caps_each_step(tiny):
    for seed in range(4):
        agent = Agent(
            tiny,
            [lookup],
            tool_choice="lookup",
            max_steps=1,
            max_parallel_calls=1,
            sampling=sampling(seed),
        )
        assert len(agent.run("Look up a and b").of_type(ToolCallEvent)) == 1


def test_models_without_call_tokens_get_bare_constrained_calls(tiny):
    """Backends whose vocabulary lacks LFM2's call tokens: a forced call is a bare JSON
    array of calls (still grammar-checked, with llama.cpp's bounded whitespace between
    tokens) and goes through the call parser; a call repeated in the array is made once."""
    engine = LocalChatModel(tiny, native_calls=False)  # as without <|tool_call_start|>
    agent = Agent(engine, [weather], tool_choice="required", max_steps=1, sampling=sampling(0))
    result = agent.run("Weather in Oslo?")
    calls = result.of_type(ToolCallEvent)
    assert calls and all(weather.validation_errors(c.arguments) == [] for c in calls)
    content = agent.messages[1].content
    written = json.loads(content)  # the array the prompt asks for, even for one call
    assert isinstance(written, list) and 1 <= len(written) <= agent.max_parallel_calls
    assert all(c["name"] == "weather" for c in written)
    assert re.search(r"\n{3}|[ \t]{21}", content) is None  # whitespace stays bounded
    distinct = {json.dumps(c, sort_keys=True) for c in written}
    assert len(calls) == len(distinct)
    assert result.of_type(TextDelta) == []  # the payload is reported as calls, not text
    assert all(r.error is None for r in result.of_type(ToolResultEvent))


def test_a_bare_model_held_to_one_call_writes_one_object(tiny):
    """`max_parallel_calls=1`: the prompt asks for one call object and the grammar
    holds the reply to exactly that (no array), on every seed of the random model."""
    engine = LocalChatModel(tiny, native_calls=False)
    for seed in range(3):
        agent = Agent(
            engine, [weather], tool_choice="required", max_steps=1, max_parallel_calls=1,
            sampling=sampling(seed),
        )  # fmt: skip
        result = agent.run("Weather in Oslo?")
        written = json.loads(agent.messages[1].content)
        assert isinstance(written, dict) and written["name"] == "weather"
        assert [c.arguments for c in result.of_type(ToolCallEvent)] == [written["arguments"]]


def test_tool_choice_none_never_calls(tiny):
    agent = Agent(tiny, [weather], tool_choice="none", max_tokens=40, sampling=sampling(5))
    result = agent.run("Weather?")
    assert result.of_type(ToolCallEvent) == []
    assert "<|tool_call_start|>" not in agent.messages[-1].content
    assert result.content == "".join(e.text for e in result.of_type(TextDelta)).strip()
    if result.stopped_by is not None:  # random text may run to the budget, nothing else
        assert result.stopped_by == "token_budget"


def test_token_budget_and_context_window_guards(tiny):
    # The step would need more tokens than the budget allows: refused before generating.
    agent = Agent(tiny, [weather], tool_choice="required", max_tokens=3)
    result = agent.run("Weather?")
    assert result.stopped_by == "token_budget"
    assert "max_tokens" in result.final.reason and result.stats.steps == 0

    # The prompt alone fills the context window.
    prompt_tokens = tiny.count_tokens(agent.system)  # far less than the whole prompt
    small = Agent(tiny, [weather], context_window=prompt_tokens + 5)
    result = small.run("Weather?")
    assert result.stopped_by == "context_window"
    assert "context window" in result.final.reason and result.stats.generated_tokens == 0


def test_cancel_stops_at_the_next_token(tiny):
    agent = Agent(tiny, tool_choice="none", max_tokens=2000, sampling=sampling(0))

    async def go() -> list:
        events = []
        async for event in agent.stream("Tell me a long story"):
            events.append(event)
            if isinstance(event, TextDelta) and len(events) == 3:
                agent.cancel()
        return events

    events = asyncio.run(go())
    final = events[-1]
    assert isinstance(final, FinalEvent) and final.stopped_by == "cancelled"
    assert final.stats.generated_tokens < 100


def test_conversation_continues_across_runs_with_cache_reuse(tiny):
    tiny.reset_cache()
    agent = Agent(tiny, response_format=Verdict, max_tokens=200, sampling=sampling(0))
    first = agent.run("Is Oslo in Norway?")
    second = agent.run("And Lima in Peru?")
    assert [m.role for m in agent.messages] == ["user", "assistant", "user", "assistant"]
    s1, s2 = first.stats, second.stats
    assert s2.cached_prompt_tokens > s1.prompt_tokens  # the whole first turn was reused
    assert s2.cached_prompt_tokens >= s1.prompt_tokens + s1.generated_tokens - 4
