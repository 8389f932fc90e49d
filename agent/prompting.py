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


def template_lists_tools(model: Model) -> bool:
    """Whether the model's chat template renders a `tools` list (many silently drop it)."""
    return model.template_lists_tools()


def render(
    model: Model,
    system: str,
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]] | None,
) -> str:
    """The whole conversation as the prompt text of the next assistant turn.

    A template that ignores `tools` gets the list in LFM2's format at the end of the
    system prompt instead, so the model still knows what it can call.
    """
    if tools and not template_lists_tools(model):
        listing = TOOL_LIST.format(tools=json.dumps(tools, ensure_ascii=False))
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
