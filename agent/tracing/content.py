"""Typed chat messages in the shape the OpenTelemetry GenAI conventions give captured
content: `{"role", "parts": [...]}`, a part per text, call or result.

Every span that records messages (the agent run and its steps, an extraction, a served
completion) builds them here from `agent.messages` objects, so the trace's shape is
written once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from agent.messages import AssistantMessage, Message, ToolMessage


def genai_message(message: Message) -> dict[str, Any]:
    """`message` as a GenAI input or output message (empty text makes no part)."""
    parts: list[dict[str, Any]] = []
    if isinstance(message, ToolMessage):
        parts.append({"type": "tool_call_response", "id": message.tool_call_id,
                      "response": message.content})  # fmt: skip
    elif message.content:
        parts.append({"type": "text", "content": message.content})
    if isinstance(message, AssistantMessage):
        parts += [{"type": "tool_call", "id": c.id, "name": c.name, "arguments": c.arguments}
                  for c in message.tool_calls]  # fmt: skip
    return {"role": message.role, "parts": parts}


def genai_json(messages: Iterable[Message], **extra: Any) -> str:
    """The attribute value of `gen_ai.input.messages` / `gen_ai.output.messages`;
    `extra` keys (an output's `finish_reason`) go on every message."""
    return json.dumps([genai_message(m) | extra for m in messages], ensure_ascii=False, default=str)
