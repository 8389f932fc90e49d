"""The data passed between the agent loop and the registry: calls, results, approvals."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

from agent.errors import UserError
from agent.limits import loads as bounded_loads

if TYPE_CHECKING:
    from tools.tool import Tool


@dataclass(frozen=True)
class ToolCall:
    """One call the model asked for. `arguments` is the parsed JSON object."""

    id: str
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def new(cls, name: str, arguments: dict[str, Any] | None = None) -> ToolCall:
        """A call with a fresh id (for callers that do not get ids from the model)."""
        return cls(f"call_{uuid.uuid4().hex[:12]}", name, dict(arguments or {}))

    @classmethod
    def from_openai(cls, data: dict[str, Any]) -> ToolCall:
        """From `{"id", "function": {"name", "arguments": "<json>"}}` (or a bare call)."""
        body = data.get("function", data)
        arguments = body.get("arguments", {})
        if isinstance(arguments, str):
            # Unparseable (or oversized, or too deeply nested) text is kept: execution
            # reports it as that call's invalid arguments.
            with contextlib.suppress(ValueError, UserError):
                arguments = bounded_loads(arguments, "arguments") if arguments.strip() else {}
        return cls(str(data.get("id") or f"call_{uuid.uuid4().hex[:12]}"), body["name"], arguments)


@dataclass(frozen=True)
class ToolOutput:
    """What a tool may return instead of a plain value: the text the model reads, plus
    raw items (images, resources: JSON objects) that only the application sees.

    MCP tools return this: a 200 kB image helps no small model, but the UI or a script
    reading the `tool_result` event may want it.
    """

    text: str
    items: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class ToolResult:
    """What a call produced. On failure `error` says why and `content` repeats it for the
    model (so the loop can feed `content` back whether or not the call failed). `items`
    are the raw attachments of a `ToolOutput`, never shown to the model."""

    call_id: str
    name: str
    content: str
    error: str | None = None
    duration_s: float = 0.0
    items: tuple[dict[str, Any], ...] = ()

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_message(self) -> dict[str, Any]:
        """The chat message that returns this result to the model."""
        return {
            "role": "tool",
            "tool_call_id": self.call_id,
            "name": self.name,
            "content": self.content,
        }


# Decides whether a call to a `requires_approval` tool may run. Sync callbacks (a y/n
# prompt) run in a worker thread so they never block the event loop.
ApprovalCallback: TypeAlias = Callable[[ToolCall, "Tool"], "bool | Awaitable[bool]"]
