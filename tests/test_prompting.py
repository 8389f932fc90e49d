"""The tool listing a model sees when its chat template does not list tools."""

from __future__ import annotations

import json
from typing import Any

from agent.prompting import JSON_CALLS_INSTRUCTION, render, system_prompt, tool_listing

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "route",
            "description": "Plan a route.",
            "parameters": {
                "type": "object",
                "properties": {"start": {"type": "string"}, "end": {"type": "string"}},
                "required": ["start", "end"],
            },
        },
    }
]


class TemplateWithoutTools:
    """A chat template that drops `tools`, as SmolLM2's does: system turn, then turns."""

    def template_lists_tools(self) -> bool:
        return False

    def chat_prompt(self, messages: list[dict[str, Any]], tools: Any = None) -> str:
        assert tools is None  # the listing went into the system turn
        return "".join(f"<{m['role']}>{m['content']}</{m['role']}>" for m in messages)


def _functions_of(listing: str) -> Any:
    return json.loads(listing.split("\n")[1])


def test_a_model_with_call_tokens_gets_lfm2s_block():
    listing = tool_listing(TOOLS, native_calls=True, max_calls=8)
    assert listing.startswith("List of tools: <|tool_list_start|>[")
    assert listing.endswith("]<|tool_list_end|>")
    assert '"type": "function"' in listing


def test_a_bare_model_gets_plain_functions_in_declared_order_and_the_reply_shape():
    one = tool_listing(TOOLS, native_calls=False, max_calls=1)
    many = tool_listing(TOOLS, native_calls=False, max_calls=8)
    for listing in (one, many):
        assert listing.startswith("You can call these functions (JSON):\n")
        functions = _functions_of(listing)
        assert functions == [TOOLS[0]["function"]]  # no OpenAI wrapper
        assert list(functions[0]["parameters"]["properties"]) == ["start", "end"]
        assert "<|tool_list_start|>" not in listing
    assert "reply with only a JSON object" in one and "array" not in one
    assert "reply with only a JSON array of calls" in many


def test_render_puts_the_plain_listing_in_the_system_turn_without_lfm2s_instruction():
    system = system_prompt("Be brief.", json_calls=True)
    assert JSON_CALLS_INSTRUCTION in system
    messages = [{"role": "user", "content": "Route from A to B"}]
    model: Any = TemplateWithoutTools()
    bare = render(model, system, messages, TOOLS, native_calls=False, max_calls=1)
    assert bare.startswith("<system>Be brief.\nYou can call these functions (JSON):\n")
    assert JSON_CALLS_INSTRUCTION not in bare
    assert bare.endswith("<user>Route from A to B</user>")
    native = render(model, system, messages, TOOLS)
    assert native.startswith(f"<system>Be brief.\n{JSON_CALLS_INSTRUCTION}\nList of tools: ")


def test_a_conversation_without_a_chat_template_is_role_lines():
    from agent.token_runtime import plain_prompt

    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    assert plain_prompt(messages) == "system: Be brief.\nuser: Hi\nassistant: "
    assert plain_prompt(messages, add_generation_prompt=False) == "system: Be brief.\nuser: Hi\n"
