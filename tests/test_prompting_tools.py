"""How the tools reach a model whose chat template drops them: LFM2's tag format for a
model that calls with LFM2's tokens, plain JSON definitions and the call shape for one
that writes bare JSON calls."""

from __future__ import annotations

import json

import pytest

from agent.prompting import PLAIN_TOOL_LIST, TOOL_LIST, tool_listing
from tools import ToolRegistry

ROUTE = {
    "name": "route.estimate_time",
    "description": "Estimate the travel time of a route.",
    "parameters": {
        "type": "object",
        "properties": {
            "start_location": {"type": "string", "description": "Where the trip starts."},
            "end_location": {"type": "string", "description": "Where it ends."},
            "stops": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["start_location", "end_location"],
    },
}


def openai_tools(*definitions: dict) -> list[dict]:
    registry = ToolRegistry()
    registry.add_definitions(list(definitions), replace=True)
    return registry.openai_tools()


def listed_json(listing: str) -> list[dict]:
    """The definitions the plain listing shows, one JSON object a line under its heading."""
    head, *lines = listing.split("\n")
    assert head == PLAIN_TOOL_LIST.split("\n")[0]
    return [json.loads(line) for line in lines if line.startswith("{")]


def test_without_call_tokens_the_definitions_are_plain_json_in_declared_order():
    listing = tool_listing(openai_tools(ROUTE), native_calls=False)
    (shown,) = listed_json(listing)
    assert shown["name"] == "route.estimate_time"
    assert shown["description"] == ROUTE["description"]
    assert list(shown["parameters"]["properties"]) == ["start_location", "end_location", "stops"]
    assert shown["parameters"]["required"] == ["start_location", "end_location"]
    assert "<|tool_list_start|>" not in listing
    assert '"type": "function"' not in listing  # no OpenAI wrapper around a definition
    # The model is told the shape the call grammar accepts.
    assert '{"name": <function name>, "arguments": {...}}' in listing
    # No line opens with `[`: a listing that did led SmolLM2 to open its calls with one.
    assert not any(line.startswith("[") for line in listing.split("\n"))


def test_every_tool_is_listed_once():
    other = {**ROUTE, "name": "route.distance"}
    shown = listed_json(tool_listing(openai_tools(ROUTE, other), native_calls=False))
    assert [tool["name"] for tool in shown] == ["route.estimate_time", "route.distance"]


def test_with_call_tokens_the_listing_is_lfm2s_unchanged():
    tools = openai_tools(ROUTE)
    listing = tool_listing(tools, native_calls=True)
    assert listing == TOOL_LIST.format(tools=json.dumps(tools, ensure_ascii=False))
    assert listing.startswith('List of tools: <|tool_list_start|>[{"type": "function"')


@pytest.mark.parametrize("native", [True, False])
def test_an_empty_description_or_parameters_still_lists(native):
    bare = {"name": "ping", "description": "", "parameters": {"type": "object", "properties": {}}}
    listing = tool_listing(openai_tools(bare), native_calls=native)
    assert '"ping"' in listing
