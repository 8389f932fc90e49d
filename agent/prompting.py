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
# A model without LFM2's call tokens writes its calls as a bare JSON reply. LFM2's tag
# block and the OpenAI `{"type": "function", "function": ...}` wrapper mean nothing to
# such a model, so it gets one plain definition a line (a listing that opened with
# `[{"` led SmolLM2-135M to add calls nobody asked for), and the reply's shape in the
# call grammar's own terms: an array of call objects, even for one call, so the model
# decides after each call whether another follows (BENCHMARKS.md, "Function calling").
PLAIN_TOOL_LIST = "You can call these functions (JSON):\n{tools}"
BARE_CALLS_INSTRUCTION = (
    'To call functions, reply with only a JSON array of calls [{"name": <function name>, '
    '"arguments": {...}}, ...], one object per call, where arguments maps each parameter '
    "name to its value."
)


def template_lists_tools(model: Model) -> bool:
    """Whether the model's chat template renders a `tools` list (many silently drop it)."""
    return model.template_lists_tools()


def tool_listing(tools: list[dict[str, Any]], *, native_calls: bool) -> str:
    """The tools as text for a system prompt whose chat template does not list them:
    LFM2's format for a model with its call tokens, plain JSON definitions otherwise."""
    if native_calls:
        return TOOL_LIST.format(tools=json.dumps(tools, ensure_ascii=False))
    lines = "\n".join(json.dumps(tool.get("function", tool), ensure_ascii=False) for tool in tools)
    return PLAIN_TOOL_LIST.format(tools=lines)


def render(
    model: Model,
    system: str,
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]] | None,
    *,
    native_calls: bool = True,
) -> str:
    """The whole conversation as the prompt text of the next assistant turn.

    A template that ignores `tools` gets the list at the end of the system prompt
    instead (see `tool_listing`), so the model still knows what it can call.
    `native_calls` says whether the engine reads LFM2 call blocks or a bare JSON reply;
    for the latter the system prompt also says the reply's shape
    (`BARE_CALLS_INSTRUCTION`), whoever lists the tools.
    """
    notes = []
    template_tools = tools or None
    if tools and not template_lists_tools(model):
        notes.append(tool_listing(tools, native_calls=native_calls))
        template_tools = None
    if tools and not native_calls:
        notes.append(BARE_CALLS_INSTRUCTION)
    system = "\n".join([system, *notes] if system else notes)
    full = [SystemMessage(system).to_dict()] if system else []
    return model.chat_prompt([*full, *messages], tools=template_tools)


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
