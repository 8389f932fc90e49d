"""No exception leaves the registry or the call parser: each hostile call is its own
one-sentence error result, and the other calls of the step keep theirs."""

from __future__ import annotations

import asyncio
import json

import pytest

from agent.tool_parser import parse_output, parse_payload
from tools import ToolRegistry, tool
from tools.calls import ToolCall

DEEP_JSON = "[" * 5_000 + "]" * 5_000
DEEP_OBJECT = '{"a":' * 2_000 + "1" + "}" * 2_000


@tool
def echo(x: dict) -> str:
    """Echo the keys of x."""
    return ",".join(sorted(x))


@tool
def anything(x: object = None) -> str:
    """Take any JSON value."""
    return "ran"


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no")

    __repr__ = __str__


@tool
def bad_result() -> object:
    """Return something that cannot be shown."""
    return Unprintable()


@tool
def raises_deep() -> str:
    """Raise an error whose message is huge."""
    raise ValueError("x" * 100_000)


def registry() -> ToolRegistry:
    return ToolRegistry([echo, anything, bad_result, raises_deep])


def nested_list(depth: int) -> list:
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (ToolCall("1", "echo", DEEP_OBJECT), "nested deeper than the limit of 64 levels"),
        (ToolCall("1", "echo", '{"x": ' + DEEP_JSON + "}"), "nested deeper than the limit"),
        (ToolCall("1", "anything", {"x": nested_list(900)}), "nested deeper than the limit"),
        (ToolCall("1", "echo", "{not json"), "are not valid JSON"),
        (ToolCall("1", "echo", b"\xff\xfe"), "are not valid JSON"),
        (ToolCall("1", "echo", '"a string"'), "must be a JSON object, not str"),
        (
            ToolCall("1", "echo", '{"x": "' + "a" * (2 * 1024 * 1024) + '"}'),
            "2 MiB of JSON, over the limit of 1 MiB",
        ),
        (ToolCall("1", ["not", "a", "name"], {}), "unknown tool"),  # type: ignore[arg-type]
        (ToolCall("1", "bad_result", {}), "the result of 'bad_result' cannot be shown"),
        (ToolCall("1", "raises_deep", {}), "ValueError: xxx"),
    ],
    ids=[
        "deep-object-text",
        "deep-array-text",
        "deep-parsed-value",
        "bad-json",
        "not-utf8",
        "not-an-object",
        "too-large",
        "unhashable-name",
        "unprintable-result",
        "huge-exception-message",
    ],
)
def test_a_hostile_call_is_an_error_result(call, expected):
    result = registry().execute_sync(call)
    assert not result.ok
    assert expected in result.content
    assert "\n" not in result.error
    assert len(result.content) < 3_000


def test_the_other_calls_of_the_step_keep_their_results():
    calls = [
        ToolCall("a", "echo", {"x": {"k": 1}}),
        ToolCall("b", "echo", '{"x": ' + DEEP_JSON + "}"),
        ToolCall("c", "anything", {"x": nested_list(3_000)}),
        ToolCall("d", "echo", {"x": {"z": 1, "y": 2}}),
    ]
    results = asyncio.run(registry().execute_many(calls))
    assert [r.call_id for r in results] == ["a", "b", "c", "d"]
    assert [r.content for r in (results[0], results[3])] == ["k", "y,z"]
    assert [r.ok for r in results] == [True, False, False, True]


def test_a_failing_approval_callback_fails_only_its_call():
    @tool(requires_approval=True)
    def guarded() -> str:
        """Needs approval."""
        return "ran"

    def approve(call, t):
        raise RecursionError("deep")

    r = ToolRegistry([guarded, anything])
    results = asyncio.run(
        r.execute_many([ToolCall("1", "guarded", {}), ToolCall("2", "anything", {})], approve)
    )
    assert results[0].error == "approval failed: RecursionError: deep"
    assert results[1].content == "ran"


def test_execute_sync_inside_a_running_loop_still_runs_the_call():
    async def main():
        return registry().execute_sync(ToolCall("1", "echo", {"x": {"q": 1}}))

    assert asyncio.run(main()).content == "q"


def test_from_openai_keeps_deep_arguments_as_text():
    call = ToolCall.from_openai({"function": {"name": "echo", "arguments": DEEP_JSON}})
    assert call.arguments == DEEP_JSON
    assert "nested deeper" in registry().execute_sync(call).content


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (DEEP_JSON, "the tool call: nested deeper than the limit of 64 levels"),
        ("echo(x=" + DEEP_JSON + ")", "nested deeper than the limit"),
        (
            json.dumps({"name": "echo", "arguments": DEEP_JSON}),
            "the arguments string: nested deeper",
        ),
        ("echo(x=" + "(" * 300 + ")" * 300 + ")", "neither JSON nor Python syntax"),
        ("echo(x=" + "-" * 200_000 + "1)", "could not be read"),
        ("[" + "echo()," * 200_000 + "]", "over the limit of 1 MiB"),
        ("", "the tool call is empty"),
    ],
    ids=["deep-json", "deep-pythonic", "deep-arguments", "parens", "unary", "huge", "empty"],
)
def test_the_call_parser_never_raises(payload, expected):
    calls = parse_payload(payload)
    assert len(calls) == 1 and calls[0].error is not None
    assert expected in calls[0].error
    marked = parse_output(f"<|tool_call_start|>{payload}<|tool_call_end|>")
    assert marked.calls[0].error == calls[0].error
    assert parse_output(payload).calls == []  # a bare failed payload is plain text


@pytest.mark.parametrize("expression", ["1e308 * 10", "1e999", "1e308 * 10 - 1e308 * 10"])
def test_calculator_results_that_are_not_finite_are_errors(expression):
    from tools.builtin.calculator import calculator

    result = ToolRegistry([calculator]).execute_sync(
        ToolCall("1", "calculator", {"expression": expression})
    )
    assert result.error == (
        "the result is not a finite number (a value overflowed a floating-point number or "
        "is undefined)"
    )


@pytest.mark.parametrize("name", ["echo\n", "echo\n\n", " echo"])
def test_tool_names_are_matched_in_full(name):
    from tools.errors import ToolDefinitionError

    with pytest.raises(ToolDefinitionError, match="a tool name must be"):
        tool(name=name)(lambda: "x")


def test_repo_ids_are_matched_in_full():
    from agent.models.registry import is_repo_id

    assert is_repo_id("org/model")
    assert not is_repo_id("org/model\n")
