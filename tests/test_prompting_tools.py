"""How the tools reach a model: LFM2's tag format for a model that calls with LFM2's
tokens, plain JSON definitions for one that writes bare JSON calls (when its chat template
drops the tools), and, for the latter, the shape of the reply its call grammar holds it to."""

from __future__ import annotations

import json

import pytest

from agent.prompting import (
    BARE_CALLS_INSTRUCTION,
    PLAIN_TOOL_LIST,
    TOOL_LIST,
    render,
    tool_listing,
)
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
    assert lines and all(line.startswith("{") for line in lines)
    return [json.loads(line) for line in lines]


def test_without_call_tokens_the_definitions_are_plain_json_in_declared_order():
    listing = tool_listing(openai_tools(ROUTE), native_calls=False)
    (shown,) = listed_json(listing)
    assert shown["name"] == "route.estimate_time"
    assert shown["description"] == ROUTE["description"]
    assert list(shown["parameters"]["properties"]) == ["start_location", "end_location", "stops"]
    assert shown["parameters"]["required"] == ["start_location", "end_location"]
    assert "<|tool_list_start|>" not in listing
    assert '"type": "function"' not in listing  # no OpenAI wrapper around a definition
    # No line opens with `[`: a listing that did led SmolLM2 to add calls to its reply.
    assert not any(line.startswith("[") for line in listing.split("\n"))


def test_every_tool_is_listed_once_in_order():
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


def test_the_bare_reply_shape_is_the_call_grammars():
    """The instruction shows an array of `{"name", "arguments"}` objects: what the call
    grammar of a model without call tokens accepts (`calls_schema`), one call included;
    a lone call object is not."""
    import jsonschema

    from agent.call_constraint import calls_schema

    registry = ToolRegistry()
    registry.add_definitions([ROUTE], replace=True)
    schema = calls_schema(registry.call_schema())
    call = {"name": "route.estimate_time", "arguments": {"start_location": "Oslo",
                                                         "end_location": "Bergen"}}  # fmt: skip
    jsonschema.validate([call], schema)
    jsonschema.validate([call, call], schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(call, schema)
    assert '[{"name": <function name>, "arguments": {...}}, ...]' in BARE_CALLS_INSTRUCTION


def test_render_adds_the_bare_shape_only_without_call_tokens(tiny):
    """tiny's template lists tools itself, so only the instruction differs; with no tools
    there is nothing to call and nothing is added."""
    tools = openai_tools(ROUTE)
    user = [{"role": "user", "content": "How long from Oslo to Bergen?"}]
    bare = render(tiny, "Be brief.", user, tools, native_calls=False)
    native = render(tiny, "Be brief.", user, tools, native_calls=True)
    assert f"Be brief.\n{BARE_CALLS_INSTRUCTION}" in bare
    assert BARE_CALLS_INSTRUCTION not in native
    assert bare.count('"route.estimate_time"') == native.count('"route.estimate_time"') == 1
    assert BARE_CALLS_INSTRUCTION not in render(tiny, "Be brief.", user, None, native_calls=False)
    # No system prompt of the caller's: the instruction is the system turn on its own.
    alone = render(tiny, "", user, tools, native_calls=False)
    assert BARE_CALLS_INSTRUCTION in alone and "\n\n" + BARE_CALLS_INSTRUCTION not in alone
