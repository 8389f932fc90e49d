"""Typed events of an agent run.

The agent loop yields these; the CLI (`--json`), the TUI and scripts all consume the
same objects, so none of them reaches into the model. Each event is a plain frozen
dataclass with a `type` tag and `to_dict()` giving a JSON-safe object for one line of
`edge-agent run --json`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from agent.stats import GenerationStats

if TYPE_CHECKING:
    from agent.guards import StopReason


@dataclass(frozen=True)
class Citation:
    """A retrieved source the answer may cite as `[index]`."""

    index: int
    path: str
    start: int
    end: int
    score: float
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "path": self.path,
            "start": self.start,
            "end": self.end,
            "score": self.score,
            "text": self.text,
        }


@dataclass
class RunStats:
    """Totals over every generation step of one run."""

    steps: int = 0
    prompt_tokens: int = 0
    cached_prompt_tokens: int = 0
    generated_tokens: int = 0
    ttft_s: float = 0.0  # first step's time to first token
    total_s: float = 0.0
    peak_memory_bytes: int = 0
    tool_calls: int = 0

    @property
    def prefilled_tokens(self) -> int:
        return self.prompt_tokens - self.cached_prompt_tokens

    def add_step(self, stats: GenerationStats) -> None:
        if self.steps == 0:
            self.ttft_s = stats.ttft_s
        self.steps += 1
        self.prompt_tokens += stats.prompt_tokens
        self.cached_prompt_tokens += stats.cached_prompt_tokens
        self.generated_tokens += stats.generated_tokens
        self.peak_memory_bytes = max(self.peak_memory_bytes, stats.peak_memory_bytes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "steps": self.steps,
            "prompt_tokens": self.prompt_tokens,
            "cached_prompt_tokens": self.cached_prompt_tokens,
            "prefilled_tokens": self.prefilled_tokens,
            "generated_tokens": self.generated_tokens,
            "ttft_s": round(self.ttft_s, 4),
            "total_s": round(self.total_s, 4),
            "peak_memory_bytes": self.peak_memory_bytes,
            "tool_calls": self.tool_calls,
        }


@dataclass(frozen=True)
class TextDelta:
    """Answer text as it streams (outside tool calls and reasoning)."""

    type: ClassVar[str] = "text"
    text: str
    step: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "text": self.text, "step": self.step}


@dataclass(frozen=True)
class ReasoningDelta:
    """Reasoning text (between `<think>` and `</think>`) as it streams."""

    type: ClassVar[str] = "reasoning"
    text: str
    step: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "text": self.text, "step": self.step}


@dataclass(frozen=True)
class ToolCallEvent:
    """A parsed, validated call, emitted before the tool runs."""

    type: ClassVar[str] = "tool_call"
    call_id: str
    name: str
    arguments: dict[str, Any]
    step: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "id": self.call_id,
            "name": self.name,
            "arguments": self.arguments,
            "step": self.step,
        }


@dataclass(frozen=True)
class ToolResultEvent:
    """What a tool returned, or why it failed (the model sees the same text). `items`
    are raw attachments the model does not see (an MCP tool's images and resources)."""

    type: ClassVar[str] = "tool_result"
    call_id: str
    name: str
    content: str
    error: str | None = None
    duration_s: float = 0.0
    step: int = 0
    items: tuple[dict[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "type": self.type,
            "id": self.call_id,
            "name": self.name,
            "content": self.content,
            "duration_s": round(self.duration_s, 4),
            "step": self.step,
        }
        if self.error is not None:
            data["error"] = self.error
        if self.items:
            data["items"] = list(self.items)
        return data


@dataclass(frozen=True)
class StatsEvent:
    """Statistics of one generation step (one model call)."""

    type: ClassVar[str] = "stats"
    stats: GenerationStats
    step: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "step": self.step, **self.stats.to_dict()}


@dataclass(frozen=True)
class ErrorEvent:
    """Something went wrong that ended the run (a tool error is a ToolResultEvent)."""

    type: ClassVar[str] = "error"
    message: str
    step: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "message": self.message, "step": self.step}


@dataclass(frozen=True)
class FinalEvent:
    """Always the last event of a run.

    `stopped_by` names the guard that ended the run (max_steps, token_budget,
    repeated_call, context_window, cancelled, error) or is None for a real answer;
    `reason` then says why in a sentence. `output` is the parsed value when a
    response_format was given; `session_id` the session the turn was saved in.
    """

    type: ClassVar[str] = "final"
    content: str
    stats: RunStats
    stopped_by: StopReason | None = None
    citations: tuple[Citation, ...] = field(default_factory=tuple)
    output: Any = None
    reason: str | None = None
    session_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "type": self.type,
            "content": self.content,
            "stats": self.stats.to_dict(),
            "citations": [c.to_dict() for c in self.citations],
        }
        if self.stopped_by is not None:
            data["stopped_by"] = self.stopped_by
        if self.reason is not None:
            data["reason"] = self.reason
        if self.output is not None:
            data["output"] = _jsonable(self.output)
        if self.session_id is not None:
            data["session_id"] = self.session_id
        return data


def _jsonable(value: Any) -> Any:
    """A pydantic instance (a response_format model) as plain JSON data."""
    dump = getattr(value, "model_dump", None)
    return dump(mode="json") if callable(dump) else value


Event = (
    TextDelta
    | ReasoningDelta
    | ToolCallEvent
    | ToolResultEvent
    | StatsEvent
    | ErrorEvent
    | FinalEvent
)
