"""Response bodies in OpenAI's shapes: a completion, stream chunks, usage.

`usage` carries OpenAI's counts (`prompt_tokens_details.cached_tokens`: tokens the
prompt cache already held) and, under `edge_agent`, what a client of a local model wants
to see per request: time waited for the model, time to first token, prefill and decode
rates, and the grammar engine that constrained the output.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from agent.messages import ToolCall
from agent.stats import GenerationStats
from agent.tool_parser import ParsedCall


@dataclass
class Outcome:
    """One finished completion as the client sees it."""

    content: str | None
    reasoning: str | None
    tool_calls: list[dict[str, Any]]
    finish_reason: str  # "stop", "length" or "tool_calls"
    stats: GenerationStats
    queue_wait_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def message(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": self.content}
        if self.reasoning:
            message["reasoning_content"] = self.reasoning
        if self.tool_calls:
            message["tool_calls"] = self.tool_calls
        return message


@dataclass(frozen=True)
class Envelope:
    """What every body and chunk of one completion repeats."""

    id: str
    model: str
    created: int

    @classmethod
    def new(cls, model: str) -> Envelope:
        return cls(f"chatcmpl-{uuid.uuid4().hex[:24]}", model, int(time.time()))


def finish_reason(stats: GenerationStats, called: bool) -> str:
    """OpenAI's finish reason: calls were made, the token limit ended the text, or the
    model ended it (an end of turn, a stop sequence, a completed answer)."""
    if called:
        return "tool_calls"
    return "length" if stats.finish_reason == "length" else "stop"


def tool_calls(calls: list[ParsedCall]) -> list[dict[str, Any]]:
    """The calls in OpenAI's shape (the one serializer of agent.messages)."""
    return [
        ToolCall(
            call.call_id or f"call_{uuid.uuid4().hex[:24]}", call.name, call.arguments
        ).to_dict()
        for call in calls
    ]


def usage(stats: GenerationStats, queue_wait_s: float) -> dict[str, Any]:
    return {
        "prompt_tokens": stats.prompt_tokens,
        "completion_tokens": stats.generated_tokens,
        "total_tokens": stats.prompt_tokens + stats.generated_tokens,
        "prompt_tokens_details": {"cached_tokens": stats.cached_prompt_tokens},
        "edge_agent": {
            "queue_wait_ms": round(queue_wait_s * 1000, 2),
            "ttft_ms": round(stats.ttft_s * 1000, 2),
            "prefill_tokens_per_s": round(stats.prefill_tps, 1),
            "decode_tokens_per_s": round(stats.decode_tps, 1),
            "total_ms": round(stats.total_s * 1000, 2),
            "grammar": stats.grammar_engine or None,
            "forced_tokens": stats.forced_tokens,
        },
    }


def completion(envelope: Envelope, outcome: Outcome) -> dict[str, Any]:
    return {
        "id": envelope.id,
        "object": "chat.completion",
        "created": envelope.created,
        "model": envelope.model,
        "choices": [
            {
                "index": 0,
                "message": outcome.message(),
                "logprobs": None,
                "finish_reason": outcome.finish_reason,
            }
        ],
        "usage": usage(outcome.stats, outcome.queue_wait_s),
    }


def chunk(
    envelope: Envelope,
    delta: dict[str, Any] | None,
    finish: str | None = None,
    *,
    include_usage: bool = False,
) -> dict[str, Any]:
    """A `chat.completion.chunk` with one choice (`delta`); with `include_usage`, every
    chunk but the last carries `usage: null`, as OpenAI's do."""
    body: dict[str, Any] = {
        "id": envelope.id,
        "object": "chat.completion.chunk",
        "created": envelope.created,
        "model": envelope.model,
        "choices": [{"index": 0, "delta": delta or {}, "logprobs": None, "finish_reason": finish}],
    }
    if include_usage:
        body["usage"] = None
    return body


def usage_chunk(envelope: Envelope, outcome: Outcome) -> dict[str, Any]:
    """The last chunk of a stream asked with `stream_options.include_usage`."""
    return {
        "id": envelope.id,
        "object": "chat.completion.chunk",
        "created": envelope.created,
        "model": envelope.model,
        "choices": [],
        "usage": usage(outcome.stats, outcome.queue_wait_s),
    }


def tool_call_deltas(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each call as OpenAI streams one: its id, type and name, then its arguments."""
    deltas = []
    for index, call in enumerate(calls):
        head = {"index": index, "id": call["id"], "type": "function",
                "function": {"name": call["function"]["name"], "arguments": ""}}  # fmt: skip
        body = {"index": index, "function": {"arguments": call["function"]["arguments"]}}
        deltas += [{"tool_calls": [head]}, {"tool_calls": [body]}]
    return deltas


class ChunkWriter:
    """SSE events of one stream, encoded once per event.

    A text delta is the hot path (one per generated token): its JSON is a fixed prefix
    and suffix around the JSON of the text, equal to `chunk(...)`'s, built once.
    """

    def __init__(self, envelope: Envelope, include_usage: bool) -> None:
        self.envelope = envelope
        self.include_usage = include_usage
        head = _compact(chunk(envelope, {"content": ""}, include_usage=include_usage))
        marker = '"delta":{"content":""}'
        at = head.index(marker)
        self._prefix = head[: at + len('"delta":{')]
        self._suffix = head[at + len(marker) - 1 :]

    def text(self, key: str, text: str) -> bytes:
        """A delta of `content` or `reasoning_content`."""
        body = f'{self._prefix}"{key}":{json.dumps(text, ensure_ascii=False)}{self._suffix}'
        return b"data: " + body.encode() + b"\n\n"

    def event(self, body: dict[str, Any]) -> bytes:
        return b"data: " + _compact(body).encode() + b"\n\n"

    def delta(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        return self.event(chunk(self.envelope, delta, finish, include_usage=self.include_usage))


DONE = b"data: [DONE]\n\n"


def _compact(body: dict[str, Any]) -> str:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))
