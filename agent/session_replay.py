"""A stored session as the events its turns produced, so history renders like a live run.

The store keeps the raw messages of each turn (the user's prompt, the model's output of
every step with its call blocks and `<think>` text, the tool results). Replaying them
through the same splitter and parser the agent uses gives back reasoning, text, tool
calls and results, so a resumed session shows exactly as it looked (the TUI renders
these events with the widgets of a live run). `Session.replay()` is the entry point.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, fields

from agent.events import (
    Event,
    FinalEvent,
    ReasoningDelta,
    RunStats,
    StatsEvent,
    TextDelta,
    ToolCallEvent,
    ToolResultEvent,
)
from agent.guards import stop_reason
from agent.messages import AssistantMessage, ToolMessage
from agent.output_split import OutputSplitter
from agent.sessions import RUNNING, StoredMessage, TurnInfo
from agent.stats import GenerationStats
from agent.tool_parser import parse_output


@dataclass
class ReplayTurn:
    """One finished turn: the prompt, then the events of its run."""

    prompt: str
    events: list[Event] = field(default_factory=list)

    def step_stats(self) -> list[GenerationStats]:
        return [e.stats for e in self.events if isinstance(e, StatsEvent)]


def replay_turns(turns: Iterable[TurnInfo]) -> list[ReplayTurn]:
    """Finished turns only: an interrupted one is not part of the conversation
    the model resumes (Session.history leaves it out), so it is not shown either."""
    return [t for t in (_replay(turn) for turn in turns if turn.status != RUNNING) if t]


def _replay(turn: TurnInfo) -> ReplayTurn | None:
    messages = list(turn.messages)
    if not messages or messages[0].role != "user":
        return None
    replay = ReplayTurn(messages[0].content)
    answer = ""
    pending: list[tuple[str, dict]] = []  # (name, arguments) of calls not yet answered
    for message in messages[1:]:
        if message.role == "assistant":
            text, calls = _assistant(message, replay.events)
            answer = text or answer
            pending = calls
        elif message.role == "tool":
            replay.events += _tool(message, pending)
    replay.events.append(FinalEvent(answer, RunStats(), stopped_by=stop_reason(turn.stopped_by)))
    return replay


def _assistant(message: StoredMessage, events: list[Event]) -> tuple[str, list[tuple[str, dict]]]:
    step = int(message.meta.get("step", 0) or 0)
    stats = _stats(message.meta.get("stats"))
    splitter = OutputSplitter()
    text: list[str] = []
    for segment in [*splitter.feed(message.content), *splitter.flush()]:
        if segment.kind == "text":
            text.append(segment.text)
            events.append(TextDelta(segment.text, step))
        elif segment.kind == "reasoning":
            events.append(ReasoningDelta(segment.text, step))
    if stats is not None:
        events.append(StatsEvent(stats, step))
    typed = message.message
    if isinstance(typed, AssistantMessage) and typed.tool_calls:  # a remote engine's calls
        return "".join(text).strip(), [(c.name, c.arguments) for c in typed.tool_calls]
    parsed = parse_output(message.content, bare=False)
    return "".join(text).strip(), [(c.name, c.arguments) for c in parsed.calls]


def _stats(data: object) -> GenerationStats | None:
    """The step's statistics as the agent stored them (extra keys are derived ones)."""
    if not isinstance(data, dict):
        return None
    known = {f.name for f in fields(GenerationStats)}
    try:
        return GenerationStats(**{k: v for k, v in data.items() if k in known})
    except TypeError:
        return None


def _tool(message: StoredMessage, pending: list[tuple[str, dict]]) -> list[Event]:
    result = message.message
    assert isinstance(result, ToolMessage)  # `_replay` calls this for tool rows only
    call_id = result.tool_call_id
    name = result.name or (pending[0][0] if pending else "tool")
    arguments: dict = {}
    for i, (pending_name, pending_args) in enumerate(pending):
        if pending_name == name:
            arguments = pending_args
            del pending[i]
            break
    return [
        ToolCallEvent(call_id, name, arguments),
        ToolResultEvent(call_id, name, result.content, error=result.error, duration_s=0.0),
    ]
