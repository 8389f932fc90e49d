"""Prompts of an agent run: the system prompt, the rendered conversation, token counts.

The conversation is re-rendered with the model's chat template every step. For the
prompt cache to hold, step k+1's text must start with step k's prompt plus exactly what
the model generated; that holds because an assistant turn's content is stored verbatim
(call blocks and `<think>` included) and LFM2's template renders content unchanged.
`PromptLedger` tracks that prefix so a step's prompt length is known (for the context
guard) by tokenising only the new turn, the way the runtime itself does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agent.messages import SystemMessage

if TYPE_CHECKING:
    from agent.token_runtime import TokenRuntime as Model

JSON_CALLS_INSTRUCTION = "Output function calls as JSON."
RAG_INSTRUCTION = (
    "Use the rag_search tool to find passages in the user's documents. Base your answer on "
    "them and cite each passage you use as [n], with the number it was given."
)
ANSWER_FORMAT_INSTRUCTION = (
    "Give your final answer as JSON that follows this JSON Schema:\n{schema}"
)


def system_prompt(
    base: str | None,
    *,
    json_calls: bool,
    rag: bool = False,
    answer_schema: Any = None,
) -> str:
    """The user's system prompt plus what the loop needs the model to know."""
    parts = [base.strip()] if base and base.strip() else []
    if json_calls:
        parts.append(JSON_CALLS_INSTRUCTION)
    if rag:
        parts.append(RAG_INSTRUCTION)
    if answer_schema is not None:
        schema = json.dumps(answer_schema, separators=(",", ":"))
        parts.append(ANSWER_FORMAT_INSTRUCTION.format(schema=schema))
    return "\n".join(parts)


TOOL_LIST = "List of tools: <|tool_list_start|>{tools}<|tool_list_end|>"
# For a model without LFM2's call tokens, whose reply is a bare JSON payload: the
# functions as plain JSON and the reply's shape in words. LFM2's tag block, the OpenAI
# `{"type": "function", ...}` wrapper and "Output function calls as JSON." mean nothing
# to such a model. On BFCL with SmolLM2-135M, under the same one-call grammar, it scores
# 38 of 100 simple_python cases against 35 for LFM2's block (BENCHMARKS.md, "Function
# calling: BFCL").
PLAIN_TOOL_LIST = (
    "You can call these functions (JSON):\n{functions}\n"
    "To call functions, reply with only {shape}, where arguments maps each parameter "
    "name to its value. If none of the functions fits the request, say so in plain words."
)
ONE_CALL_SHAPE = 'a JSON object {"name": <function name>, "arguments": {...}}'
CALLS_SHAPE = (
    'a JSON array of calls [{"name": <function name>, "arguments": {...}}, ...], one per call'
)


def template_lists_tools(model: Model) -> bool:
    """Whether the model's chat template renders a `tools` list (many silently drop it)."""
    return model.template_lists_tools()


def tool_listing(
    tools: list[dict[str, Any]], *, native_calls: bool, max_calls: int | None = None
) -> str:
    """The tools as system-prompt text, for a chat template that does not list them:
    LFM2's block for a model with its call tokens; otherwise the functions as plain
    JSON and the reply's shape, one call object (`max_calls` 1) or an array of calls,
    the shape the call grammar then holds the reply to."""
    if native_calls:
        return TOOL_LIST.format(tools=json.dumps(tools, ensure_ascii=False))
    functions = json.dumps([tool.get("function", tool) for tool in tools], ensure_ascii=False)
    shape = ONE_CALL_SHAPE if max_calls == 1 else CALLS_SHAPE
    return PLAIN_TOOL_LIST.format(functions=functions, shape=shape)


def without_json_calls_instruction(system: str) -> str:
    """`system` without LFM2's own instruction line (the plain listing says it all)."""
    lines = system.split("\n")
    return "\n".join(line for line in lines if line != JSON_CALLS_INSTRUCTION)


def render(
    model: Model,
    system: str,
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]] | None,
    *,
    native_calls: bool = True,
    max_calls: int | None = None,
) -> str:
    """The whole conversation as the prompt text of the next assistant turn.

    A template that ignores `tools` gets the list at the end of the system prompt
    instead (see `tool_listing`), so the model still knows what it can call.
    """
    if tools and not template_lists_tools(model):
        if not native_calls:
            system = without_json_calls_instruction(system)
        listing = tool_listing(tools, native_calls=native_calls, max_calls=max_calls)
        system = f"{system}\n{listing}" if system else listing
        tools = None
    full = [SystemMessage(system).to_dict()] if system else []
    return model.chat_prompt([*full, *messages], tools=tools or None)


@dataclass
class PromptLedger:
    """The text the model's cache holds (prompt + output) and its length in tokens."""

    text: str = ""
    tokens: int = 0

    def count(self, model: Model, prompt: str) -> int:
        """Tokens of `prompt`, tokenising only what extends the last step's text."""
        if self.text and len(prompt) > len(self.text) and prompt.startswith(self.text):
            suffix = prompt[len(self.text) :]
            return self.tokens + len(model.encode_fragment(suffix))
        return model.count_tokens(prompt)

    def extends(self, prompt: str) -> bool:
        return bool(self.text) and prompt.startswith(self.text)

    def record(self, model: Model, prompt: str, prompt_tokens: int, generated: list[int]) -> None:
        self.text = prompt + model.vocabulary.decode(generated)
        self.tokens = prompt_tokens + len(generated)
