"""A model whose replies are written in advance: agent-loop tests without seed hunting.

    model = ScriptedModel([
        Reply(calls=[("weather", {"city": "Paris"})]),
        Reply(text="It is sunny in Paris."),
    ])
    Agent(model, [weather]).run("Weather in Paris?")

Replies come from a list (one per step, in order) or from a function of the
`StepRequest`, as pydantic-ai's `FunctionModel` does, so a test can answer depending on
what the loop sent (the tool results so far, the tool choice, the answer format). Text is
streamed word by word; a reply may carry reasoning, calls, or a response-format answer.
"""

from __future__ import annotations

import itertools
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from agent.engines.base import PreparedStep, StepEvent, StepRequest, StepResult, TextPiece
from agent.errors import UserError
from agent.messages import AssistantMessage, ToolCall
from agent.model_info import ModelInfo
from agent.sampling import SamplingParams
from agent.stats import GenerationStats
from agent.tool_parser import ParsedCall

CallSpec = tuple[str, dict[str, Any]] | dict[str, Any]


@dataclass(frozen=True)
class Reply:
    """One scripted assistant step."""

    text: str = ""
    reasoning: str = ""
    calls: Sequence[CallSpec] = ()
    answer: Any = None  # the response-format value (sent as its JSON text)
    finish_reason: str = "stop"


@dataclass
class ScriptedModel:
    """A `ChatModel` that replays `replies` (or asks `function` for each step)."""

    replies: Iterable[Reply | str] | Callable[[StepRequest], Reply | str] = ()
    name: str = "scripted"
    context: int = 32_768
    requests: list[StepRequest] = field(default_factory=list)  # every step it was asked
    provider: str = "scripted"

    def __post_init__(self) -> None:
        self._next = self.replies if callable(self.replies) else _iterate(iter(list(self.replies)))

    @property
    def context_length(self) -> int:
        return self.context

    @property
    def default_sampling(self) -> SamplingParams:
        return SamplingParams.greedy()

    def compile_answer(self, answer: Any, timeout: float = 30.0) -> None:
        if getattr(answer, "kind", None) == "json":
            from schemas.compiler import check_schema

            check_schema(answer.json_schema)

    def prepare(self, request: StepRequest) -> PreparedStep:
        self.requests.append(request)
        size = len(request.system) + sum(len(m.content) for m in request.messages)
        return PreparedStep(request, prompt_tokens=max(1, size // 4), min_tokens=1)

    @property
    def info(self) -> ModelInfo:
        return ModelInfo(self.name, "", "scripted", "none", 0, 0, self.context, 0, "scripted")

    def reset(self) -> None:
        pass

    def close(self) -> None:
        pass

    async def stream(
        self,
        step: PreparedStep,
        max_tokens: int,
        should_stop: Callable[[], bool] | None = None,
    ) -> AsyncIterator[StepEvent]:
        t0 = time.perf_counter()
        reply = self._next(step.request)
        if isinstance(reply, str):
            reply = Reply(text=reply)
        if not isinstance(reply, Reply):
            raise UserError(f"a scripted reply must be a Reply or a string, got {reply!r}")
        if reply.reasoning:
            yield TextPiece(reply.reasoning, "reasoning")
        generated = 0
        text: list[str] = []
        finish = reply.finish_reason
        for word in _words(reply.text):
            if generated >= max_tokens:
                finish = "length"
                break
            if should_stop is not None and should_stop():
                finish = "cancelled"
                break
            text.append(word)
            generated += 1
            yield TextPiece(word)
        calls = [_parsed(c) for c in reply.calls] if step.request.tool_choice != "none" else []
        calls = [
            ParsedCall(c.name, c.arguments, c.error, f"call_{uuid.uuid4().hex[:12]}") for c in calls
        ]
        answer_text = None
        if reply.answer is not None and step.request.answer is not None:
            answer_text = json.dumps(reply.answer, ensure_ascii=False)
        visible = "".join(text)
        message = AssistantMessage(
            answer_text or visible,
            tuple(ToolCall(c.call_id or "", c.name, c.arguments) for c in calls),
        )
        total = time.perf_counter() - t0
        stats = GenerationStats(
            prompt_tokens=step.prompt_tokens,
            generated_tokens=max(generated + len(calls), 1),
            ttft_s=total,
            total_s=total,
            finish_reason=finish,
            engine="scripted",
        )
        yield StepResult(
            raw=answer_text or visible,
            text=visible.strip(),
            calls=calls,
            stats=stats,
            answer_text=answer_text,
            assistant_message=message,
        )


def _iterate(replies: Any) -> Callable[[StepRequest], Reply | str]:
    counter = itertools.count(1)

    def next_reply(_request: StepRequest) -> Reply | str:
        step = next(counter)
        try:
            return next(replies)
        except StopIteration:
            raise UserError(f"the scripted model has no reply left for step {step}") from None

    return next_reply


def _words(text: str) -> list[str]:
    """`text` in pieces that join back to it exactly (a word and its trailing space)."""
    pieces: list[str] = []
    for part in text.split(" "):
        pieces.append(part + " ")
    if pieces:
        pieces[-1] = pieces[-1][:-1]
    return [p for p in pieces if p]


def _parsed(call: CallSpec) -> ParsedCall:
    if isinstance(call, dict):
        return ParsedCall(call["name"], dict(call.get("arguments", {})))
    name, arguments = call
    return ParsedCall(name, dict(arguments))
