"""`Agent`: a model, tools and guards, run step by step as a stream of typed events.

One run answers one prompt. Each step renders the conversation with the model's chat
template (tools listed in the system turn), generates under the step's call constraint,
parses the calls, runs them concurrently through the tool registry and appends the
results as `tool` turns; a step without calls is the final answer. The conversation is
rendered so that every step extends the previous prompt plus output, and the runtime's
prompt cache then prefills only the new turn.

`tool_choice` ("auto", "none", "required" or a tool name) applies to the first step of
a run; with `reset_tool_choice=True` (the default, as in the OpenAI Agents SDK) later
steps are "auto", because a choice that forced a call on every step could never end
with an answer.

`response_format` with tools: a step starts with either the call token or the first
token of the JSON answer (the union of both grammars), so the model still decides
between calling and answering, and its answer is the constrained JSON itself. This
costs no extra step, unlike a separate constrained "answer" step after the last call,
and never throws away a free-text answer; the price is that no free text (or
reasoning) precedes the answer in that mode.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agent.constrained.defaults import DEFAULT_COMPILE_TIMEOUT
from agent.constrained.output_types import OutputSpec, resolve_output_type
from agent.engines.base import (
    DEFAULT_MAX_PARALLEL_CALLS,
    ChatModel,
    ChoiceMode,
    StepRequest,
    StepResult,
    TextPiece,
    closing_stream,
)
from agent.errors import UserError
from agent.events import (
    Citation,
    ErrorEvent,
    Event,
    FinalEvent,
    ReasoningDelta,
    RunStats,
    StatsEvent,
    TextDelta,
    ToolCallEvent,
    ToolResultEvent,
)
from agent.guards import (
    CANCELLED,
    CONTEXT_WINDOW,
    ERROR,
    TOKEN_BUDGET,
    Limits,
    RepeatGuard,
    Stop,
    max_steps_stop,
    step_budget,
)
from agent.messages import AssistantMessage, Message, ToolMessage, UserMessage, as_messages
from agent.prompting import system_prompt
from agent.rag import CitationBook, rag_search_tool
from agent.sampling import SamplingParams
from agent.sessions import Session, SessionStore
from agent.tool_parser import ParsedCall
from agent.tracing import Tracing
from agent.tracing.run_spans import RunInfo, trace_run
from tools import ApprovalCallback, Tool, ToolCall, ToolRegistry, ToolResult

if TYPE_CHECKING:
    from tools.mcp import MCPServerConfig

CHOICES: tuple[ChoiceMode, ...] = ("auto", "none", "required")
UNVERIFIED = "remote-unverified"  # agent.engines.remote: structure checked on arrival
RETRY_ANSWER = (
    "That answer does not follow the required JSON Schema: {problem}. Reply again with "
    "only the JSON."
)
log = logging.getLogger(__name__)


@dataclass
class RunResult:
    """Everything one run produced; `final` is the last event."""

    final: FinalEvent
    events: list[Event]

    @property
    def content(self) -> str:
        return self.final.content

    @property
    def output(self) -> Any:
        return self.final.output

    @property
    def stopped_by(self) -> str | None:
        return self.final.stopped_by

    @property
    def stats(self) -> RunStats:
        return self.final.stats

    @property
    def citations(self) -> tuple[Citation, ...]:
        return self.final.citations

    def of_type(self, cls: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, cls)]


@dataclass
class _Step:
    """What one step left behind for the loop to act on."""

    result: StepResult | None = None
    text: str = ""
    calls: list[ParsedCall] = field(default_factory=list)
    stop: Stop | None = None


class Agent:
    """A model with tools, guards and (optionally) a persistent session."""

    def __init__(
        self,
        model: ChatModel | Any,
        tools: ToolRegistry | Iterable[Tool | Callable[..., Any]] | None = None,
        *,
        system: str | None = None,
        max_steps: int = 8,
        max_tokens: int = 4096,
        tool_choice: str = "auto",
        response_format: Any = None,
        retriever: Any = None,
        session: Session | str | None = None,
        approve: ApprovalCallback | None = None,
        sampling: SamplingParams | None = None,
        max_identical_calls: int = 2,
        context_window: int | None = None,
        reset_tool_choice: bool = True,
        max_parallel_calls: int = DEFAULT_MAX_PARALLEL_CALLS,
        rag_k: int = 4,
        compile_timeout: float = DEFAULT_COMPILE_TIMEOUT,
        raw_system: bool = False,
        mcp_servers: Iterable[MCPServerConfig | str | Mapping[str, Any]] = (),
        name: str = "edge-agent",
        tracing: Tracing | None = None,
        trust_tool_results: bool = False,
    ) -> None:
        """`model` is a `ChatModel` (agent.engines), a loaded `agent.Model`, or a spec
        (`tiny`, a directory, a repo id, `openai:http://host/v1#name`). `raw_system`
        uses `system` exactly as given, without the instructions the loop adds (tool
        format, retrieval, answer schema). `mcp_servers` (command lines, URLs or
        `tools.mcp.MCPServerConfig`s) start now and stop with `close()`. `name` names the
        agent in traces; `tracing` sends its spans somewhere else than OpenTelemetry's
        global providers (agent.tracing).

        Once the conversation has read untrusted content (a result of a tool marked
        `untrusted_results`: http_get, read_file, list_dir, rag_search, MCP tools),
        calls to tools marked `side_effects` go through `approve` first, so that a
        page or a document cannot make the model act unasked (prompt injection).
        `trust_tool_results=True` turns that off."""
        from agent.engines import as_chat_model

        self.model: ChatModel = as_chat_model(model)
        self.name = name
        self.tracing = tracing or Tracing()
        self.limits = Limits(max_steps, max_tokens, max_identical_calls, context_window)
        self._book = CitationBook()
        self.registry = _build_registry(tools, retriever, self._book, rag_k, self.tracing)
        self.response_format = response_format
        self.retriever = retriever
        self.approve = approve
        self.sampling = sampling or self.model.default_sampling
        self.reset_tool_choice = reset_tool_choice
        if not isinstance(max_parallel_calls, int) or max_parallel_calls < 1:
            raise UserError(f"max_parallel_calls must be >= 1, got {max_parallel_calls!r}")
        self.max_parallel_calls = max_parallel_calls
        self.compile_timeout = compile_timeout
        self.session = _open_session(session, self.model.name)
        self._answer: OutputSpec | None = None
        if response_format is not None:  # compile now: a bad schema fails here, not mid-run
            self._answer = resolve_output_type(response_format)
            self.model.compile_answer(self._answer, compile_timeout)
        # MCP servers start last, once nothing else can fail but the tool choice.
        servers = list(mcp_servers)
        if servers:
            self.registry.add_mcp_servers(servers)
        try:
            self.tool_choice = _check_tool_choice(tool_choice, self.registry)
        except BaseException:
            self.registry.close()  # a bad argument leaves no server running
            raise
        self.system = (
            (system or "")
            if raw_system
            else system_prompt(
                system,
                json_calls=len(self.registry) > 0,
                rag=retriever is not None,
                answer_schema=self._answer.json_schema if self._answer else None,
            )
        )
        self.trust_tool_results = trust_tool_results
        self.messages = self.session.history() if self.session else []
        self._cancel = threading.Event()
        self._running = False

    # ------------------------------------------------------------------ public
    def close(self) -> None:
        """Stop the MCP servers this agent started (idempotent)."""
        self.registry.close()

    def __enter__(self) -> Agent:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, prompt: str) -> RunResult:
        """Run to the end and return every event (for scripts; no event loop needed)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.arun(prompt))
        raise RuntimeError("Agent.run() inside an event loop: use `await agent.arun(prompt)`")

    async def arun(self, prompt: str) -> RunResult:
        events: list[Event] = []
        async for event in self.stream(prompt):
            events.append(event)
        assert isinstance(events[-1], FinalEvent)
        return RunResult(events[-1], events)

    def cancel(self) -> None:
        """Stop the current run at the next token; it ends with stopped_by="cancelled"."""
        self._cancel.set()

    def reset(self) -> None:
        """Forget the conversation (a new session, if one was attached, is not created)."""
        self.messages = []
        self.model.reset()

    @property
    def messages(self) -> list[Message]:
        """The conversation so far, as typed messages (agent.messages)."""
        return self._messages

    @messages.setter
    def messages(self, history: Iterable[Message | Mapping[str, Any]]) -> None:
        """A conversation to continue: typed messages or OpenAI-style dicts (checked
        here, once; a bad one is a `MessageError` naming it)."""
        self._messages = as_messages(history, "the agent's messages")
        self._read_untrusted = any(self._untrusted_message(m) for m in self._messages)

    @property
    def read_untrusted(self) -> bool:
        """Whether the conversation holds untrusted content (from then on, tools with
        side effects need approval unless `trust_tool_results`)."""
        return self._read_untrusted

    def _untrusted_message(self, message: Message) -> bool:
        """A stored tool result from a tool marked `untrusted_results`, or from a tool
        this agent does not have (which cannot be vouched for)."""
        if not isinstance(message, ToolMessage):
            return False
        tool = self.registry.get(message.name)
        return tool is None or tool.untrusted_results

    async def stream(self, prompt: str) -> AsyncIterator[Event]:
        """The events of one run; the last is always a `FinalEvent`. The run is one
        `invoke_agent` span when tracing is on (agent.tracing)."""
        if not isinstance(prompt, str) or not prompt.strip():
            raise UserError("the prompt is empty")
        if self._running:
            raise RuntimeError("this Agent is already running; one run at a time")
        self._running = True
        events = trace_run(self._events(prompt), self.tracing, self._run_info(prompt))
        try:
            async for event in events:
                yield event
        finally:
            await events.aclose()  # the loop's own clean-up, now, not at garbage collection
            self._running = False

    def _run_info(self, prompt: str) -> RunInfo:
        return RunInfo(
            agent_name=self.name,
            model=self.model.name,
            provider=self.model.provider,
            max_tokens=self.limits.max_tokens,
            temperature=self.sampling.temperature,
            top_p=self.sampling.top_p,
            seed=self.sampling.seed,
            system=self.system,
            prompt=prompt,
        )

    async def _events(self, prompt: str) -> AsyncGenerator[Event, None]:
        self._cancel.clear()
        self._book.reset()
        started = time.perf_counter()
        stats = RunStats()
        turn = self.session.begin_turn() if self.session else 0
        ended = False
        try:
            self._add(turn, UserMessage(prompt))
            stop: Stop | None = None
            content, output = "", None
            repeat = RepeatGuard(self.limits.max_identical_calls)
            try:
                for step in range(1, self.limits.max_steps + 1):
                    if self._cancel.is_set():  # cancelled while tools ran
                        stop = Stop(CANCELLED, "the run was cancelled")
                        break
                    state = _Step()
                    mode, name = self._choice(step)
                    # A consumer that leaves mid-step stops the generation now (and
                    # waits for it), not whenever the generator is collected.
                    generation = self._generate(step, mode, name, state, turn, stats)
                    async with closing_stream(generation) as events:
                        async for event in events:
                            yield event
                    if state.stop is not None:
                        stop = state.stop
                        break
                    assert state.result is not None
                    finish = state.result.stats.finish_reason
                    content = state.text
                    if finish == "cancelled":
                        stop = Stop(CANCELLED, "the run was cancelled")
                        break
                    if not state.calls:
                        if finish == "length":
                            stop = self._length_stop(stats)
                        elif self._answer is not None:
                            output, stop = self._parse_answer(state)
                            if stop is not None and self._may_retry_answer(state, step):
                                # A server that does not guarantee the schema: say what
                                # was wrong and let the model answer again.
                                retry = RETRY_ANSWER.format(problem=stop.message)
                                self._add(turn, UserMessage(retry))
                                stop = None
                                continue
                        break
                    async for item in self._call_tools(step, state.calls, repeat, turn, stats):
                        if isinstance(item, Stop):
                            stop = item
                        else:
                            yield item
                    if stop is not None:
                        break
                else:
                    stop = max_steps_stop(self.limits.max_steps)
            except Exception as exc:  # the run ends with an error event, never a traceback
                message = str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"
                # The user sees one line; the log keeps where it came from.
                log.log(
                    logging.INFO if isinstance(exc, UserError) else logging.ERROR,
                    "the run failed: %s", message, exc_info=True,
                )  # fmt: skip
                yield ErrorEvent(message)
                stop = Stop(ERROR, message)
            stats.total_s = time.perf_counter() - started
            if self.session:
                self.session.end_turn(turn, stop.by if stop else None)
            ended = True
            yield FinalEvent(
                content=content,
                stats=stats,
                stopped_by=stop.by if stop else None,
                citations=self._book.citations(),
                output=output,
                reason=stop.message if stop else None,
                session_id=self.session.id if self.session else None,
            )
        finally:
            if self.session and not ended:  # the consumer walked away mid-run
                self.session.end_turn(turn, CANCELLED)
            self._running = False

    # ------------------------------------------------------------ one step
    def _choice(self, step: int) -> tuple[ChoiceMode, str | None]:
        """The tool choice of this step, and the tool it must call (None: any)."""
        if not len(self.registry):
            return "none", None
        choice = self.tool_choice
        if step > 1 and self.reset_tool_choice and choice not in ("auto", "none"):
            return "auto", None
        mode = next((c for c in CHOICES if c == choice), None)
        return (mode, None) if mode is not None else ("required", choice)

    async def _generate(
        self,
        step: int,
        mode: ChoiceMode,
        name: str | None,
        state: _Step,
        turn: int,
        stats: RunStats,
    ) -> AsyncIterator[Event]:
        model = self.model
        request = StepRequest(
            system=self.system,
            messages=self.messages,
            sampling=self.sampling,
            tools=self.registry.openai_tools(),
            tool_choice=mode,
            tool_name=name,
            call_schema=self.registry.call_schema(name) if mode != "none" else None,
            max_parallel_calls=self.max_parallel_calls,
            answer=self._answer,
            compile_timeout=self.compile_timeout,
        )
        # Rendering and compiling take time: off the event loop.
        prepared = await asyncio.to_thread(model.prepare, request)
        context = min(self.limits.context_window or model.context_length, model.context_length)
        budget, stop = step_budget(
            self.limits, stats.generated_tokens, prepared.prompt_tokens, context,
            prepared.min_tokens,
        )  # fmt: skip
        log.debug(
            "step %d: tool choice %s%s, prompt %d tokens, budget %d",
            step, mode, f" ({name})" if name else "", prepared.prompt_tokens, budget,
        )  # fmt: skip
        if stop is not None:
            state.stop = stop
            return
        result: StepResult | None = None
        pieces = model.stream(prepared, budget, should_stop=self._cancel.is_set)
        async with closing_stream(pieces):
            async for item in pieces:
                if isinstance(item, TextPiece):
                    if item.kind == "reasoning":
                        yield ReasoningDelta(item.text, step)
                    else:
                        yield TextDelta(item.text, step)
                else:
                    result = item
        assert result is not None
        stats.add_step(result.stats)
        yield StatsEvent(result.stats, step)
        state.result = result
        state.text = result.text
        state.calls = result.calls if mode != "none" else []
        message = result.assistant_message or AssistantMessage(result.raw)
        self._add(turn, message, {"step": step, "stats": result.stats.to_dict()})

    async def _call_tools(
        self,
        step: int,
        parsed: list[ParsedCall],
        repeat: RepeatGuard,
        turn: int,
        stats: RunStats,
    ) -> AsyncIterator[Event | Stop]:
        calls = [
            ToolCall(p.call_id, p.name or "?", p.arguments)
            if p.call_id
            else ToolCall.new(p.name or "?", p.arguments)
            for p in parsed
        ]
        for call in calls:
            yield ToolCallEvent(call.id, call.name, call.arguments, step)
        stats.tool_calls += len(calls)
        valid = [(c, p) for c, p in zip(calls, parsed, strict=True) if p.error is None]
        stop = repeat.check([(c.name, c.arguments) for c, _ in valid])
        if stop is not None:
            yield stop
            return
        executed = await self.registry.execute_many(
            [c for c, _ in valid],
            self.approve,
            after_untrusted=self._read_untrusted and not self.trust_tool_results,
        )
        # Results of this step reach the model from the next step on: calls of this
        # step were chosen before it read them.
        if any((t := self.registry.get(c.name)) and t.untrusted_results for c, _ in valid):
            self._read_untrusted = True
        by_id = {r.call_id: r for r in executed}
        for call, p in zip(calls, parsed, strict=True):
            result = by_id.get(call.id) or ToolResult(
                call.id, call.name, f"Error: {p.error}", p.error, 0.0
            )
            yield ToolResultEvent(
                call.id, call.name, result.content, result.error, result.duration_s, step,
                result.items,
            )  # fmt: skip
            self._add(turn, result.to_message())

    # ------------------------------------------------------------ endings
    def _length_stop(self, stats: RunStats) -> Stop:
        if stats.generated_tokens >= self.limits.max_tokens:
            return Stop(
                TOKEN_BUDGET,
                f"the answer was cut off at the run's {self.limits.max_tokens}-token budget; "
                "raise max_tokens",
            )
        return Stop(
            CONTEXT_WINDOW,
            "the answer was cut off at the end of the context window; start a new session",
        )

    def _may_retry_answer(self, state: _Step, step: int) -> bool:
        assert state.result is not None
        guaranteed = state.result.stats.grammar_engine not in ("", UNVERIFIED)
        return not guaranteed and step < self.limits.max_steps

    def _parse_answer(self, state: _Step) -> tuple[Any, Stop | None]:
        assert self._answer is not None and state.result is not None
        answer = state.result.answer_text
        text = answer if answer is not None else state.text
        try:
            return self._answer.parse(text.strip()), None
        except Exception as exc:
            return None, Stop(ERROR, f"the final answer does not match response_format: {exc}")

    def _add(self, turn: int, message: Message, meta: dict[str, Any] | None = None) -> None:
        """Append to the conversation, and to the session (`meta`: the step's number and
        statistics, which the session keeps beside the message for the replay)."""
        self._messages.append(message)
        if self.session:
            self.session.add_message(turn, message, meta)


def _build_registry(
    tools: ToolRegistry | Iterable[Tool | Callable[..., Any]] | None,
    retriever: Any,
    book: CitationBook,
    rag_k: int,
    tracing: Tracing,
) -> ToolRegistry:
    if isinstance(tools, ToolRegistry):
        registry = ToolRegistry(tools.tools(), max_result_chars=tools.max_result_chars)
    else:
        registry = ToolRegistry(list(tools or ()))
    if retriever is not None:
        registry.register(rag_search_tool(retriever, book, rag_k, tracing))
    return registry


def _check_tool_choice(choice: str, registry: ToolRegistry) -> str:
    if choice in ("auto", "none"):
        return choice
    if not len(registry):
        raise UserError(f"tool_choice '{choice}' needs at least one tool, and none is registered")
    if choice == "required" or choice in registry:
        return choice
    raise UserError(
        f"tool_choice must be auto, required, none or a tool name ({', '.join(registry.names())}); "
        f"got '{choice}'"
    )


def _open_session(session: Session | str | None, model_name: str) -> Session | None:
    if session is None or isinstance(session, Session):
        return session
    return SessionStore().open_or_create(session, model=model_name)
