"""Property-based fuzzing: any tool arguments through the registry, and any model output
through the call parser, end in a result or an error result, never an exception.

Bounded (`max_examples`, no deadline) so the suite is the same on a loaded machine.
"""

from __future__ import annotations

import asyncio

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.tool_parser import CALL_END, CALL_START, parse_output, parse_payload
from tools import ToolRegistry, tool
from tools.builtin.calculator import calculator
from tools.calls import ToolCall

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=40,
)


@tool
def typed(count: int, names: list[str], options: dict[str, float] | None = None) -> str:
    """A tool with typed parameters."""
    return f"{count}:{len(names)}:{len(options or {})}"


REGISTRY = ToolRegistry([typed, calculator])


@FUZZ
@given(
    name=st.sampled_from(["typed", "calculator", "missing"]) | st.text(max_size=10),
    arguments=json_values | st.text(max_size=200) | st.binary(max_size=50),
)
def test_any_arguments_give_a_result(name, arguments):
    calls = [ToolCall("x", name, arguments), ToolCall("ok", "typed", {"count": 1, "names": []})]
    results = asyncio.run(REGISTRY.execute_many(calls))
    assert [r.call_id for r in results] == ["x", "ok"]
    assert results[1].content == "1:0:0"
    first = results[0]
    assert first.ok or (first.error and first.content == f"Error: {first.error}")


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


payloads = (
    st.text(max_size=300)
    | st.text(alphabet='[]{}(),:"=\\ abcf0123.-', max_size=300)
    | st.integers(min_value=0, max_value=20_000).map(_nested)
    | st.builds(lambda v: f"f(x={v})", st.text(max_size=40))
)


@FUZZ
@given(payload=payloads)
def test_any_model_output_parses_to_calls_or_errors(payload):
    for calls in (
        parse_payload(payload),
        parse_output(payload).calls,
        parse_output(f"text {CALL_START}{payload}{CALL_END} more").calls,
        parse_output(f"{CALL_START}{payload}").calls,
    ):
        for call in calls:
            assert isinstance(call.name, str)
            assert call.error is None or "\n" not in call.error
            assert isinstance(call.arguments, dict)
