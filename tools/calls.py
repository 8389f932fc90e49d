"""The data passed between the agent loop and the registry: calls, results, approvals."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

# One call type from the model's output to the registry and back into the conversation.
from agent.messages import ToolCall, ToolMessage

if TYPE_CHECKING:
    from tools.tool import Tool


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

    def to_message(self) -> ToolMessage:
        """The chat message that returns this result to the model."""
        return ToolMessage(self.call_id, self.content, self.name, self.error)


# Decides whether a call to a `requires_approval` tool may run. Sync callbacks (a y/n
# prompt) run in a worker thread so they never block the event loop.
ApprovalCallback: TypeAlias = Callable[[ToolCall, "Tool"], "bool | Awaitable[bool]"]
