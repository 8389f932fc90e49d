"""Executing calls: validation, conversion, errors and timeouts as results, concurrency,
call order, approvals."""

from __future__ import annotations

import asyncio
import io
import sys
import threading
import time
from dataclasses import dataclass
from enum import Enum
from typing import Literal

import pytest
from pydantic import BaseModel

from agent.messages import ToolMessage
from tools import (
    Tool,
    ToolCall,
    ToolExecutionError,
    ToolRegistry,
    ToolResult,
    approve_all,
    deny_all,
    prompt_approval,
    tool,
)


class Unit(Enum):
    CELSIUS = "c"
    FAHRENHEIT = "f"


class Box(BaseModel):
    width: float
    height: float = 1.0


@dataclass
class Seen:
    calls: list


def run(coro):
    return asyncio.run(coro)


def make_registry(seen: Seen) -> ToolRegistry:
    @tool
    def convert(
        value: float, unit: Unit, box: Box, pair: tuple[int, int], mode: Literal["a", "b"] = "a"
    ) -> dict:
        """Records the Python values it receives."""
        seen.calls.append((value, unit, box, pair, mode))
        return {"unit": unit.value, "area": box.width * box.height, "pair": list(pair)}

    @tool
    async def shout(text: str, times: int = 1) -> str:
        """Async tool."""
        await asyncio.sleep(0)
        return (text.upper() + " ") * times

    @tool
    def fail(reason: str) -> str:
        """Raises."""
        raise ValueError(f"cannot do it: {reason}")

    @tool
    def refuse() -> str:
        """Raises an anticipated error."""
        raise ToolExecutionError("refused: not today")

    return ToolRegistry([convert, shout, fail, refuse])


def test_arguments_are_converted_to_the_function_types():
    seen = Seen([])
    registry = make_registry(seen)
    call = ToolCall("c1", "convert", {"value": 3, "unit": "f", "box": {"width": 2}, "pair": [1, 2]})
    result = run(registry.execute(call))
    assert result == ToolResult("c1", "convert", result.content, None, result.duration_s)
    assert result.ok and result.content == '{"unit":"f","area":2.0,"pair":[1,2]}'
    value, unit, box, pair, mode = seen.calls[0]
    assert value == 3.0 and isinstance(value, float)
    assert unit is Unit.FAHRENHEIT  # the enum member, not "f"
    assert isinstance(box, Box) and box == Box(width=2.0, height=1.0)  # the model instance
    assert pair == (1, 2) and isinstance(pair, tuple)
    assert mode == "a"  # the default applies
    assert result.duration_s >= 0


def test_async_tool_and_arguments_given_as_json_text():
    registry = make_registry(Seen([]))
    result = run(registry.execute(ToolCall("c2", "shout", '{"text": "hi", "times": 2}')))
    assert result.content == "HI HI " and result.error is None


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (ToolCall("x", "nope", {}), "unknown tool 'nope'; available tools: convert, shout"),
        (
            ToolCall("x", "shout", {}),
            "invalid arguments for 'shout': 'text' is a required property",
        ),
        (
            ToolCall("x", "shout", {"text": "a", "times": "3"}),
            "invalid arguments for 'shout': at 'times': '3' is not of type 'integer'",
        ),
        (
            ToolCall("x", "shout", {"text": "a", "loud": True}),
            "Additional properties are not allowed ('loud' was unexpected)",
        ),
        (
            ToolCall(
                "x", "convert", {"value": 1, "unit": "k", "box": {"width": 1}, "pair": [1, 2]}
            ),
            "at 'unit': 'k' is not one of ['c', 'f']",
        ),
        (ToolCall("x", "shout", "{not json"), "arguments of 'shout' are not valid JSON"),
        (ToolCall("x", "shout", [1, 2]), "arguments of 'shout' must be a JSON object, not list"),
        (ToolCall("x", "fail", {"reason": "rain"}), "ValueError: cannot do it: rain"),
        (ToolCall("x", "refuse", {}), "refused: not today"),
    ],
)
def test_failures_become_error_results(call, expected):
    result = run(make_registry(Seen([])).execute(call))
    assert not result.ok
    assert expected in result.error
    assert result.content == f"Error: {result.error}"  # the model sees the error text
    assert result.call_id == "x" and result.name == call.name


def test_definition_without_implementation():
    registry = ToolRegistry()
    registry.add_definitions([{"name": "remote", "parameters": {"type": "dict", "properties": {}}}])
    result = run(registry.execute(ToolCall("r", "remote", {})))
    assert result.error == "no implementation for tool 'remote' (it was loaded from a definition)"


def test_timeouts_sync_and_async_and_the_loop_goes_on():
    release, hang_returned = threading.Event(), threading.Event()

    @tool(timeout=0.3)
    def hang() -> str:
        """A sync tool that never finishes on its own."""
        release.wait(30)
        hang_returned.set()
        return "late"

    @tool(timeout=0.3)
    async def slow() -> str:
        """An async tool that is too slow."""
        await asyncio.sleep(30)
        return "late"

    @tool
    def quick() -> str:
        """Fine."""
        return "done"

    registry = ToolRegistry([hang, slow, quick])
    results = run(
        registry.execute_many(
            [ToolCall("1", "hang", {}), ToolCall("2", "slow", {}), ToolCall("3", "quick", {})]
        )
    )
    # asyncio.run returned while the abandoned thread still blocks (it did not wait for it).
    assert not hang_returned.is_set()
    release.set()
    assert [r.error for r in results] == [
        "'hang' timed out after 0.3s",
        "'slow' timed out after 0.3s",
        None,
    ]
    assert results[2].content == "done"
    # A later step runs normally.
    assert run(registry.execute(ToolCall("4", "quick", {}))).content == "done"


def test_many_calls_run_concurrently_and_return_in_call_order():
    finished: list[str] = []

    @tool
    async def wait_async(name: str, seconds: float) -> str:
        """Sleeps."""
        await asyncio.sleep(seconds)
        finished.append(name)
        return name

    @tool
    def wait_sync(name: str, seconds: float) -> str:
        """Sleeps in a thread."""
        time.sleep(seconds)
        finished.append(name)
        return name

    registry = ToolRegistry([wait_async, wait_sync])
    calls = [
        ToolCall("a", "wait_async", {"name": "a", "seconds": 0.9}),
        ToolCall("b", "wait_sync", {"name": "b", "seconds": 0.6}),
        ToolCall("c", "wait_async", {"name": "c", "seconds": 0.05}),
        ToolCall("d", "wait_sync", {"name": "d", "seconds": 0.3}),
        ToolCall("e", "missing", {}),
    ]
    results = run(registry.execute_many(calls))
    assert [r.call_id for r in results] == ["a", "b", "c", "d", "e"]
    assert [r.content for r in results[:4]] == ["a", "b", "c", "d"]
    assert results[4].error.startswith("unknown tool 'missing'")
    assert finished == ["c", "d", "b", "a"]  # they overlapped (in call order: a, b, c, d)


def test_return_values_become_text():
    class Report(BaseModel):
        title: str
        score: float

    @tool
    def as_model() -> Report:
        """Pydantic."""
        return Report(title="t", score=0.5)

    @tool
    def as_none() -> None:
        """Nothing."""

    @tool
    def as_enum() -> list:
        """Enum members and tuples serialise as JSON."""
        return [Unit.CELSIUS, (1, 2), "é"]

    @tool
    def as_text() -> str:
        """Strings are passed as they are."""
        return 'already "text"'

    @tool
    def huge() -> str:
        """Too long for the context."""
        return "x" * 500

    registry = ToolRegistry([as_model, as_none, as_enum, as_text, huge], max_result_chars=100)
    names = registry.names()
    results = run(registry.execute_many([ToolCall(n, n, {}) for n in names]))
    contents = [r.content for r in results]
    assert contents[:4] == [
        '{"title":"t","score":0.5}',
        "null",
        '["c",[1,2],"é"]',
        'already "text"',
    ]
    assert contents[4].startswith("x" * 100) and contents[4].endswith(
        "[truncated: 400 more characters]"
    )


def test_sys_exit_inside_a_tool_is_an_error_not_an_exit():
    @tool
    def leave() -> str:
        """Calls sys.exit."""
        sys.exit(3)

    @tool
    async def leave_async() -> str:
        """Calls sys.exit too."""
        sys.exit(4)

    registry = ToolRegistry([leave, leave_async])
    results = run(
        registry.execute_many([ToolCall("1", "leave", {}), ToolCall("2", "leave_async", {})])
    )
    assert "SystemExit" in results[0].error and "SystemExit" in results[1].error


# ------------------------------------------------------------------ approval
def approval_registry(ran: list) -> ToolRegistry:
    @tool(requires_approval=True, timeout=0.5)
    def delete(path: str) -> str:
        """Deletes (pretend)."""
        ran.append(path)
        return f"deleted {path}"

    @tool
    def read(path: str) -> str:
        """No approval needed."""
        ran.append("read " + path)
        return "content"

    return ToolRegistry([delete, read])


def test_approval_required_denied_and_granted():
    ran: list = []
    registry = approval_registry(ran)
    call = ToolCall("1", "delete", {"path": "a.txt"})
    result = run(registry.execute(call))  # no callback: never runs
    assert "requires approval and no approval callback is set" in result.error
    result = run(registry.execute(call, approve=deny_all))
    assert result.error == "denied by the user" and result.content == "Error: denied by the user"
    assert ran == []
    result = run(registry.execute(call, approve=approve_all))
    assert result.content == "deleted a.txt" and ran == ["a.txt"]
    # Tools without requires_approval never ask.
    asked = []
    run(
        registry.execute(
            ToolCall("2", "read", {"path": "b"}), approve=lambda c, t: asked.append(c) or False
        )
    )
    assert asked == [] and ran[-1] == "read b"


def test_async_callback_order_and_that_approval_time_is_not_tool_time():
    ran: list = []
    registry = approval_registry(ran)
    asked: list[tuple[str, str]] = []

    async def slow_reviewer(call: ToolCall, t: Tool) -> bool:
        asked.append((call.id, t.name))
        await asyncio.sleep(0.4)  # a person thinking; the tool's timeout is 0.5s
        return call.arguments["path"] != "keep.txt"

    calls = [
        ToolCall("1", "delete", {"path": "a.txt"}),
        ToolCall("2", "read", {"path": "r"}),
        ToolCall("3", "delete", {"path": "keep.txt"}),
        ToolCall("4", "delete", {"path": 5}),  # invalid: never asked about
    ]
    results = run(registry.execute_many(calls, approve=slow_reviewer))
    assert asked == [("1", "delete"), ("3", "delete")]  # one at a time, in call order
    assert [r.error for r in results[:3]] == [None, None, "denied by the user"]
    assert "is not of type 'string'" in results[3].error
    assert sorted(ran) == ["a.txt", "read r"]


def test_approval_callback_that_raises_or_returns_non_bool():
    ran: list = []
    registry = approval_registry(ran)
    call = ToolCall("1", "delete", {"path": "a"})

    def broken(call, t):
        raise RuntimeError("no terminal")

    assert (
        run(registry.execute(call, approve=broken)).error
        == "approval failed: RuntimeError: no terminal"
    )
    assert run(registry.execute(call, approve=lambda c, t: "yes")).error == "denied by the user"
    assert ran == []


def test_prompt_approval_reads_a_y_n_answer():
    t = Tool.from_function(
        lambda path: path,
        name="delete",
        schema={"type": "object", "properties": {"path": {"type": "string"}}},
    )
    call = ToolCall("1", "delete", {"path": "a.txt"})
    for answer, expected in [
        ("y\n", True),
        ("YES\n", True),
        ("n\n", False),
        ("\n", False),
        ("", False),
    ]:
        err = io.StringIO()
        assert prompt_approval(call, t, stdin=io.StringIO(answer), stderr=err) is expected
        assert 'Run tool delete({"path": "a.txt"})? [y/N]' in err.getvalue()


def test_prompt_approval_through_the_registry():
    ran: list = []
    registry = approval_registry(ran)

    def answer_yes(call, t):
        return prompt_approval(call, t, stdin=io.StringIO("y\n"), stderr=io.StringIO())

    result = run(registry.execute(ToolCall("1", "delete", {"path": "z"}), approve=answer_yes))
    assert result.content == "deleted z"


def test_call_helpers():
    call = ToolCall.from_openai(
        {"id": "call_9", "function": {"name": "f", "arguments": '{"a": 1}'}}
    )
    assert call == ToolCall("call_9", "f", {"a": 1})
    assert ToolCall.new("g", {"b": 2}).id.startswith("call_")
    result = ToolResult("call_9", "f", "ok")
    assert result.to_message() == ToolMessage("call_9", "ok", "f")
    assert result.to_message().to_dict() == {
        "role": "tool",
        "tool_call_id": "call_9",
        "name": "f",
        "content": "ok",
    }
    registry = ToolRegistry(
        [
            Tool.from_function(
                lambda a: a * 2,
                name="double",
                schema={
                    "type": "object",
                    "properties": {"a": {"type": "integer"}},
                    "required": ["a"],
                },
            )
        ]
    )
    assert registry.execute_sync(ToolCall("1", "double", {"a": 21})).content == "42"
