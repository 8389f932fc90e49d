"""The seam between the agent loop and whatever produces a model step.

The agent loop, structured output, the CLI and the TUI talk to a `ChatModel`: given the
conversation, the tools, the tool choice and an optional answer format, it produces one
assistant step as a stream of text pieces and a final `StepResult` (the exact text, the
parsed calls, the statistics). Three engines implement it:

* `LocalChatModel` (agent.engines.local): a model in this process (MLX), whose tokens
  are constrained by grammars, so every call and answer is valid by construction;
* `RemoteChatModel` (agent.engines.remote): any OpenAI-compatible server over HTTP,
  whose calls and answers are validated on arrival;
* `ScriptedModel` (agent.engines.scripted): replies written in advance, for tests.

Nothing above this seam imports MLX.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar

from agent.constrained.defaults import DEFAULT_MAX_PARALLEL_CALLS
from agent.messages import AssistantMessage, Message, as_messages
from agent.model_info import ModelInfo
from agent.sampling import SamplingParams
from agent.stats import GenerationStats
from agent.tool_parser import ParsedCall

ChoiceMode = Literal["auto", "none", "required"]
PieceKind = Literal["text", "reasoning"]
# How a step's structure was guaranteed: by a grammar while decoding ("llguidance",
# "regex+llguidance", "regex"), checked on arrival from a server that does not guarantee
# it ("remote-unverified": every constrained step of a remote engine, whatever arrived),
# or not constrained.
GrammarKind = str


@dataclass(frozen=True)
class StepRequest:
    """One assistant step to produce.

    `messages` is the conversation so far, typed (agent.messages); OpenAI-style dicts
    are accepted too and checked into typed messages here, once, so an engine only ever
    sees typed ones. `call_schema`
    is the JSON Schema of one call `{"name", "arguments"}` the grammar allows (the agent
    loop builds it from its registry); `answer` the constrained final answer, if any.
    """

    system: str
    messages: Sequence[Message]
    sampling: SamplingParams
    tools: list[dict[str, Any]] = field(default_factory=list)
    tool_choice: ChoiceMode = "none"
    tool_name: str | None = None
    call_schema: dict[str, Any] | None = None
    max_parallel_calls: int = DEFAULT_MAX_PARALLEL_CALLS
    answer: Any = None  # an OutputSpec (agent.constrained.output_types)
    compile_timeout: float = 30.0  # seconds for a grammar the step needs
    # Whitespace a grammar allows between JSON tokens of calls and answers (a bounded
    # regex such as "[ ]?"); "" is compact JSON; None leaves it to the engine (the local
    # engine: compact, except calls of a model without native call tokens, which get
    # `LOOSE_JSON_WHITESPACE`).
    whitespace: str | None = None
    # Refuse the token that would repeat a cycle inside a constrained value
    # (agent.constrained.loop_guard); engines without grammars ignore it.
    loop_guard: bool = False

    def __post_init__(self) -> None:
        # A frozen dataclass normalizing its own field (callers may pass a list, or dicts).
        object.__setattr__(self, "messages", tuple(as_messages(self.messages)))


@dataclass
class PreparedStep:
    """A request ready to run: what it costs before a token is generated."""

    request: StepRequest
    prompt_tokens: int  # of the rendered prompt (an estimate for remote engines)
    min_tokens: int  # the fewest tokens the step can end in
    state: Any = None  # the engine's own (rendered prompt, compiled constraint, ...)


@dataclass(frozen=True)
class TextPiece:
    """Streamed output: visible text or reasoning."""

    text: str
    kind: PieceKind = "text"


@dataclass
class StepResult:
    """What one step produced.

    `raw` is the assistant turn to append to the conversation, exactly as the engine
    will want to see it again (for a local model: the tokens it generated, call blocks
    included, so the next prompt extends the prompt cache). `answer_text` is the text of
    a constrained answer when the step gave one (else None).
    """

    raw: str
    text: str
    calls: list[ParsedCall]
    stats: GenerationStats
    answer_text: str | None = None
    # The turn to append to the conversation (None: `raw` as an assistant message).
    assistant_message: AssistantMessage | None = None


StepEvent = TextPiece | StepResult


class ChatModel(Protocol):
    """What every engine offers the agent loop (see the module docstring)."""

    name: str
    provider: str  # "mlx", "openai", "scripted", ...

    @property
    def context_length(self) -> int: ...

    @property
    def default_sampling(self) -> SamplingParams: ...

    @property
    def info(self) -> ModelInfo: ...

    def compile_answer(self, answer: Any, timeout: float = 30.0) -> Any:
        """Check (and where a grammar constrains decoding, compile) a response format
        now, so that a bad schema fails before a run starts."""

    def prepare(self, request: StepRequest) -> PreparedStep:
        """Render, count and compile what the step needs (blocking: run it off the loop)."""

    def stream(
        self,
        step: PreparedStep,
        max_tokens: int,
        should_stop: Callable[[], bool] | None = None,
    ) -> AsyncIterator[StepEvent]:
        """The step's text pieces, then its `StepResult`."""

    def reset(self) -> None:
        """Forget conversation state (prompt caches) before an unrelated conversation."""

    def close(self) -> None:
        """Release connections and threads."""


T = TypeVar("T")


@asynccontextmanager
async def closing_stream(stream: AsyncIterator[T]) -> AsyncIterator[AsyncIterator[T]]:
    """`stream`, closed (`aclose`, when it has one) as the block exits, also when its
    consumer leaves early: an abandoned generator is otherwise closed only when it is
    collected, and a step's generation would go on on the model thread until then."""
    try:
        yield stream
    finally:
        close = getattr(stream, "aclose", None)
        if close is not None:
            await close()
