"""The agent loop on a real model without LFM2's call tokens (SmolLM2-135M-Instruct).

Its chat template drops `tools`, so the tool list goes into the system prompt; its
vocabulary has no call tokens, so a forced call is a bare JSON object (or an array of
them), constrained by a call grammar and read by the call parser.
"""

from __future__ import annotations

import pytest

from agent import Agent, SamplingParams, load_model
from agent.errors import ModelUnavailableError
from agent.events import ToolCallEvent, ToolResultEvent
from agent.prompting import JSON_CALLS_INSTRUCTION, render, template_lists_tools
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
    prompt = render(smollm2, agent.system, [], agent.registry.openai_tools(), native_calls=False)
    # No LFM2 block or instruction for a model without its call tokens: plain JSON.
    assert 'You can call these functions (JSON):\n[{"name": "calculator"' in prompt
    assert "<|tool_list_start|>" not in prompt and JSON_CALLS_INSTRUCTION not in prompt
    assert "reply with only a JSON array of calls" in prompt
    result = agent.run("What is 12 times 7? Use the calculator.")
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
