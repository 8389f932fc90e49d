"""The agent loop on a real model without LFM2's call tokens (SmolLM2-135M-Instruct).

Its chat template drops `tools`, so the tool list goes into the system prompt; its
vocabulary has no call tokens, so a forced call is a bare JSON array of call objects,
constrained by a call grammar and read by the call parser.
"""

from __future__ import annotations

import json

import pytest

from agent import Agent, SamplingParams, load_model
from agent.errors import ModelUnavailableError
from agent.events import StatsEvent, ToolCallEvent, ToolResultEvent
from agent.prompting import BARE_CALLS_INSTRUCTION, render, template_lists_tools
from tools import builtin_tools


@pytest.fixture(scope="module")
def smollm2():
    from agent.models.registry import BUILTIN_MODELS

    try:
        BUILTIN_MODELS["smollm2"].ensure()
    except ModelUnavailableError as exc:
        pytest.skip(f"SmolLM2 wheel not available: {exc}")
    return load_model("smollm2", reuse=True)


@pytest.mark.slow
def test_forced_calculator_call_on_smollm2(smollm2):
    agent = Agent(
        smollm2,
        builtin_tools(["calculator"]),
        tool_choice="required",
        max_steps=1,
        max_tokens=80,
        sampling=SamplingParams.greedy(),
    )
    assert not template_lists_tools(smollm2)
    question = "What is 12 times 7? Use the calculator."
    user = [{"role": "user", "content": question}]
    tools = agent.registry.openai_tools()
    plain = render(smollm2, agent.system, user, tools, native_calls=False)
    assert 'You can call these functions (JSON):\n{"name": "calculator"' in plain
    assert "<|tool_list_start|>" not in plain and BARE_CALLS_INSTRUCTION in plain
    lfm2 = render(smollm2, agent.system, user, tools, native_calls=True)
    assert "List of tools: <|tool_list_start|>[" in lfm2 and BARE_CALLS_INSTRUCTION not in lfm2
    smollm2.reset_cache()
    result = agent.run(question)
    # The engine sent the plain listing: a model without call tokens writes bare JSON.
    assert result.of_type(StatsEvent)[0].stats.prompt_tokens == smollm2.count_tokens(plain)
    written = json.loads(agent.messages[1].content)
    assert isinstance(written, list) and written  # an array, as the prompt says
    calls = result.of_type(ToolCallEvent)
    assert calls and all(c.name == "calculator" for c in calls)
    results = result.of_type(ToolResultEvent)
    assert all(r.error is None for r in results), [r.error for r in results]
    assert "84" in results[0].content


@pytest.mark.slow
def test_the_mlx_kv_cache_is_trimmed_to_a_shared_prefix(smollm2):
    from prompt_cache_checks import check_cache_is_trimmed_to_the_shared_prefix

    model = load_model("smollm2", engine="mlx", reuse=True)  # attention only: trimmable
    check_cache_is_trimmed_to_the_shared_prefix(model)
