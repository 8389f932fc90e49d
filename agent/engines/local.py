"""A model in this process (MLX), driven token by token under grammars.

Each step renders the conversation with the model's chat template, compiles (or reuses)
the grammars the step needs and generates on the model thread under its constraint:
free text, LFM2 call blocks whose payload is a JSON array of valid calls, or the
response format's JSON. Calls and answers are therefore valid by construction, and the
rendered conversation of step k+1 extends step k's prompt plus output, so the runtime's
prompt cache prefills only the new turn.
"""

from __future__ import annotations

import json
import threading
import weakref
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from agent.call_constraint import CallTokens, ToolCallConstraint, calls_schema
from agent.constrained.compile import DEFAULT_COMPILE_TIMEOUT
from agent.constrained.defaults import LOOSE_JSON_WHITESPACE
from agent.constrained.engine import Grammar
from agent.constrained.output_types import OutputSpec
from agent.constrained.select import compile_output
from agent.constrained.target import target_for
from agent.engines.base import (
    PreparedStep,
    StepEvent,
    StepRequest,
    StepResult,
    TextPiece,
    closing_stream,
)
from agent.messages import AssistantMessage, Message
from agent.model_info import ModelInfo
from agent.model_thread import stream_on_model_thread
from agent.output_split import OutputSplitter
from agent.prompting import PromptLedger, render
from agent.sampling import SamplingParams
from agent.token_runtime import GenerationResult, TextChunk
from agent.token_runtime import TokenRuntime as Model
from agent.tool_parser import CALL_END, CALL_START, parse_output


class StepShape(Enum):
    """What a step's output is, so how it is constrained and read (one of four)."""

    TOKENS = "tokens"  # LFM2's call tokens: the constraint moves between text, calls, answer
    CALLS = "calls"  # the whole output is a bare call payload (no call tokens to wrap it)
    ANSWER = "answer"  # the whole output is the response_format answer
    TEXT = "text"  # unconstrained; calls are parsed from it (bare ones too)


@dataclass
class _Plan:
    """A step's constraint, the fewest tokens it needs, and how its output is read."""

    constraint: Any
    needed: int
    shape: StepShape
    engine: str = ""

    @property
    def bare(self) -> bool:
        """Calls may be a bare payload: the vocabulary has no call tokens."""
        return self.shape in (StepShape.CALLS, StepShape.TEXT)


class LocalChatModel:
    """The `ChatModel` of a loaded `agent.runtime.Model` (one per model: see `for_model`).

    `native_calls=False` ignores LFM2's call tokens even where the vocabulary has them:
    calls are then a bare JSON array under a grammar (what a model without call tokens
    gets), for comparisons such as the plain-JSON baseline of `edge-agent eval bfcl`.
    """

    provider = "mlx"

    def __init__(self, model: Model, *, native_calls: bool = True) -> None:
        self.model = model
        self.name = model.name
        self._ledger = PromptLedger()
        self._tokens = CallTokens.for_model(model) if native_calls else None
        self._grammars: dict[tuple[str, str, str], Grammar] = {}
        self._lock = threading.Lock()

    @classmethod
    def for_model(cls, model: Model) -> LocalChatModel:
        """The one engine of `model`: its prompt cache and ledger must not be shared by two."""
        with _ENGINES_LOCK:
            engine = _ENGINES.get(model)
            if engine is None:
                engine = _ENGINES[model] = cls(model)
            return engine

    # ------------------------------------------------------------------ facts
    @property
    def native_calls(self) -> bool:
        """Whether calls are LFM2 call blocks (the vocabulary has the call tokens and
        they are used); else a bare JSON payload, constrained or parsed."""
        return self._tokens is not None

    @property
    def context_length(self) -> int:
        return self.model.context_length

    @property
    def default_sampling(self) -> SamplingParams:
        return self.model.default_sampling

    @property
    def info(self) -> ModelInfo:
        return self.model.info

    def reset(self) -> None:
        self.model.reset_cache()
        self._ledger = PromptLedger()

    def close(self) -> None:
        pass

    # ------------------------------------------------------------------ steps
    def compile_answer(
        self, answer: OutputSpec, timeout: float = DEFAULT_COMPILE_TIMEOUT
    ) -> Grammar:
        """The grammar of a response format, compiled now (a bad schema fails here)."""
        return self._grammar("answer", answer, None, timeout)

    def prepare(self, request: StepRequest) -> PreparedStep:
        model = self.model
        prompt = render(model, request.system, _template_messages(request.messages),
                        request.tools or None, native_calls=self.native_calls,
                        max_calls=request.max_parallel_calls)  # fmt: skip
        plan = self._plan(request)
        return PreparedStep(request, self._ledger.count(model, prompt), plan.needed,
                            (prompt, plan))  # fmt: skip

    async def stream(
        self,
        step: PreparedStep,
        max_tokens: int,
        should_stop: Callable[[], bool] | None = None,
    ) -> AsyncIterator[StepEvent]:
        prompt, plan = step.state
        request = step.request
        model = self.model
        splitter = OutputSplitter()
        visible: list[str] = []
        result: GenerationResult | None = None
        decode = plan.constraint
        if request.loop_guard and decode is not None:
            from agent.constrained.loop_guard import LoopGuard

            decode = LoopGuard(decode)
        generation = stream_on_model_thread(
            model,
            prompt,
            max_tokens=max_tokens,
            sampling=request.sampling,
            constraint=decode,
            should_stop=should_stop,
        )
        async with closing_stream(generation):  # closed early: the generation stops
            async for item in generation:
                if isinstance(item, TextChunk):
                    if plan.shape is not StepShape.CALLS:  # a bare call is reported as calls
                        for piece in _pieces(splitter.feed(item.text), visible):
                            yield piece
                else:
                    result = item
        for piece in _pieces(splitter.flush(), visible):
            yield piece
        assert result is not None
        self._ledger.record(model, prompt, result.stats.prompt_tokens, result.token_ids)
        constraint = plan.constraint
        answered = plan.shape is StepShape.ANSWER or (
            isinstance(constraint, ToolCallConstraint)
            and constraint.answer_grammar is not None
            and (
                constraint.state == "answer"
                or (constraint.state == "done" and not constraint.calls)
            )
        )
        parsed = parse_output(result.text, bare=plan.bare and not answered)
        calls = parsed.calls if request.tool_choice != "none" else []
        result.stats.grammar_engine = plan.engine if plan.constraint is not None else ""
        yield StepResult(
            raw=result.text,
            text="".join(visible).strip(),
            calls=calls,
            stats=result.stats,
            answer_text=result.text.strip() if answered else None,
            assistant_message=AssistantMessage(result.text),
        )

    # ------------------------------------------------------------------ plans
    def _plan(self, request: StepRequest) -> _Plan:
        """How this step is decoded and parsed (compiles grammars: run it off the loop)."""
        mode = request.tool_choice
        timeout = request.compile_timeout
        space = request.whitespace or ""
        answer = (
            self._grammar("answer", request.answer, None, timeout, space)
            if request.answer
            else None
        )
        calls = None
        if mode != "none":
            assert request.call_schema is not None
            schema = calls_schema(request.call_schema, request.max_parallel_calls)
            if self._tokens is None and request.max_parallel_calls == 1:
                schema = request.call_schema  # a bare reply: the one call object the
                # prompt asks for (an array of calls otherwise, see `tool_listing`)
            end = self._tokens.call_end if self._tokens is not None else None
            call_space = request.whitespace
            if call_space is None:  # see LOOSE_JSON_WHITESPACE
                call_space = "" if self._tokens is not None else LOOSE_JSON_WHITESPACE
            calls = self._grammar("calls", schema, end, timeout, call_space)
        grammar = calls or answer
        engine = grammar.engine if grammar is not None else ""
        if self._tokens is not None:
            constraint = ToolCallConstraint(
                self._tokens, mode=mode, call_grammar=calls, answer_grammar=answer
            )
            return _Plan(constraint, constraint.min_tokens(), StepShape.TOKENS, engine)
        # A model without LFM2's call tokens: constrain what can be, parse the rest.
        if mode == "required":
            assert calls is not None
            return _Plan(calls.start(), calls.min_tokens(), StepShape.CALLS, calls.engine)
        if answer is not None and mode == "none":
            return _Plan(answer.start(), answer.min_tokens(), StepShape.ANSWER, answer.engine)
        return _Plan(None, 1, StepShape.TEXT)  # with tool_choice none its calls are dropped

    def _grammar(
        self, kind: str, output: Any, end: int | None, timeout: float, whitespace: str = ""
    ) -> Grammar:
        """A compiled grammar, kept for the model's lifetime (tool sets repeat per step)."""
        from agent.constrained.output_types import resolve_output_type

        spec = output if isinstance(output, OutputSpec) else resolve_output_type(output)
        key = (kind, spec.key, whitespace)
        with self._lock:
            grammar = self._grammars.get(key)
        if grammar is None:
            grammar = compile_output(
                spec,
                target_for(self.model),
                end_ids=(end,) if end is not None else None,
                whitespace=whitespace,
                timeout=timeout,
            ).grammar
            with self._lock:
                self._grammars[key] = grammar
        return grammar


_ENGINES: weakref.WeakKeyDictionary[Model, LocalChatModel] = weakref.WeakKeyDictionary()
_ENGINES_LOCK = threading.Lock()


def _pieces(segments: Any, visible: list[str]) -> list[TextPiece]:
    pieces = []
    for seg in segments:
        if seg.kind == "text":
            visible.append(seg.text)
            pieces.append(TextPiece(seg.text, "text"))
        elif seg.kind == "reasoning":
            pieces.append(TextPiece(seg.text, "reasoning"))
    return pieces


def _template_messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """The conversation as the chat template sees it: each turn's role and text.

    An assistant turn produced here is stored verbatim (call blocks included) and is
    rendered as it is; one that came from elsewhere with typed `tool_calls` gets them
    written as an LFM2 call block, so the model sees its calls either way. A tool turn
    is its text: the template matches results to calls by order, not by id.
    """
    out = []
    for message in messages:
        content = message.content
        calls = message.tool_calls if isinstance(message, AssistantMessage) else ()
        if calls and CALL_START not in content:
            block = [{"name": c.name, "arguments": c.arguments} for c in calls]
            content += f"{CALL_START}{json.dumps(block, ensure_ascii=False)}{CALL_END}"
        out.append({"role": message.role, "content": content})
    return out
