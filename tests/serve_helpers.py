"""Shared pieces of the `edge-agent serve` tests: tools, a validator, waiting on /health."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import jsonschema

WEATHER = {
    "type": "function",
    "function": {
        "name": "weather",
        "description": "Current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "maxLength": 20},
                "unit": {"type": "string", "enum": ["c", "f"]},
            },
            "required": ["city"],
        },
    },
}
TIME = {
    "type": "function",
    "function": {
        "name": "time_in",
        "description": "The time in a time zone.",
        "parameters": {
            "type": "object",
            "properties": {"zone": {"type": "string", "maxLength": 20},
                           "hours24": {"type": "boolean"}},
            "required": ["zone", "hours24"],
        },
    },
}  # fmt: skip
TOOLS = [WEATHER, TIME]
PARAMETERS = {t["function"]["name"]: t["function"]["parameters"] for t in TOOLS}
# An answer that takes over a thousand tokens: a generation that is still running when
# a test needs it to be (the grammar cannot end it sooner).
LONG_ANSWER = {
    "type": "json_schema",
    "json_schema": {
        "name": "long",
        "schema": {
            "type": "array",
            "items": {"type": "integer", "minimum": 100000, "maximum": 999999},
            "minItems": 300,
            "maxItems": 300,
        },
    },
}


def assert_valid_calls(tool_calls: Any) -> list[tuple[str, dict[str, Any]]]:
    """Every call names a tool and its arguments parse and validate; (name, args) each."""
    assert tool_calls, "no tool calls"
    calls = []
    for call in tool_calls:
        assert call.type == "function" and call.id
        arguments = json.loads(call.function.arguments)
        schema = PARAMETERS[call.function.name]
        jsonschema.validate(arguments, schema, format_checker=jsonschema.FormatChecker())
        calls.append((call.function.name, arguments))
    return calls


def health(url: str) -> dict[str, Any]:
    root = url.removesuffix("/v1")
    return httpx.get(f"{root}/health", timeout=10).json()


def wait_for(url: str, condition: Callable[[dict[str, Any]], bool], timeout: float = 120) -> dict:
    """Poll /health until `condition` holds (a deadline, not a duration, is asserted)."""
    deadline = time.monotonic() + timeout
    while True:
        state = health(url)
        if condition(state):
            return state
        if time.monotonic() > deadline:
            raise AssertionError(f"the server never got there: {state}")
        time.sleep(0.02)
