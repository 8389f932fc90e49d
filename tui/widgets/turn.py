"""One assistant turn: everything the agent emits between a prompt and its FinalEvent."""

from __future__ import annotations

from textual.containers import Vertical
from textual.content import Content
from textual.widgets import Static

from agent.events import (
    Citation,
    ErrorEvent,
    Event,
    FinalEvent,
    ReasoningDelta,
    StatsEvent,
    TextDelta,
    ToolCallEvent,
    ToolResultEvent,
)
from tui.widgets.error_card import ErrorCard
from tui.widgets.message import AnswerMessage
from tui.widgets.reasoning import ReasoningBlock
from tui.widgets.tool_card import ToolCard

STOP_LABELS = {
    "cancelled": "stopped",
    "max_steps": "stopped: too many steps",
    "token_budget": "stopped: token budget reached",
    "repeated_call": "stopped: the model repeated a tool call",
    "context_window": "stopped: the context window is full",
    "error": "stopped by an error",
}


class Citations(Static):
    """The sources a RAG answer may cite as [n], under the answer."""

    DEFAULT_CSS = """
    Citations {
        color: $text-muted;
        padding: 0 1;
        margin: 1 0 0 0;
        border-top: dashed $foreground 20%;
    }
    """

    def __init__(self, citations: tuple[Citation, ...]) -> None:
        self.citations = citations
        lines = [Content.from_markup("[b]Sources[/b]")]
        for c in citations:
            lines.append(
                Content.assemble(
                    (f"[{c.index}] ", "bold $accent"),
                    f"{c.path}:{c.start}-{c.end}",
                    (f"  score {c.score:.2f}", "dim"),
                )
            )
        super().__init__(Content("\n").join(lines))


class StopMarker(Static):
    DEFAULT_CSS = """
    StopMarker { color: $warning; padding: 0 1; margin: 1 0 0 0; text-style: italic; }
    """


class AssistantTurn(Vertical):
    """Renders one run's events in order, so text, tool cards and text interleave.

    Answer text goes into the last answer segment, or a new one after a tool card;
    reasoning of every step goes into the turn's single reasoning block.
    """

    DEFAULT_CSS = """
    AssistantTurn { height: auto; margin: 0 0 1 0; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.reasoning: ReasoningBlock | None = None
        self.segments: list[AnswerMessage] = []
        self.cards: dict[str, ToolCard] = {}
        self.final: FinalEvent | None = None
        self.errors: list[str] = []
        self.deltas = 0  # text and reasoning deltas received
        self._open: AnswerMessage | None = None

    @property
    def answer_text(self) -> str:
        return "".join(s.text for s in self.segments)

    @property
    def finished(self) -> bool:
        return self.final is not None

    async def handle(self, event: Event) -> None:
        if isinstance(event, TextDelta):
            self.deltas += 1
            await self._text(event.text)
        elif isinstance(event, ReasoningDelta):
            self.deltas += 1
            await self._reasoning(event)
        elif isinstance(event, ToolCallEvent):
            await self._close_segment()
            new_card = ToolCard(event)
            self.cards[event.call_id] = new_card
            await self.mount(new_card)
        elif isinstance(event, ToolResultEvent):
            card = self.cards.get(event.call_id)
            if card is None:  # a result without a call: still show it
                card = ToolCard(ToolCallEvent(event.call_id, event.name, {}, event.step))
                self.cards[event.call_id] = card
                await self.mount(card)
            await card.finish(event)
        elif isinstance(event, ErrorEvent):
            await self.add_error(event.message)
        elif isinstance(event, FinalEvent):
            await self._final(event)
        elif isinstance(event, StatsEvent):
            pass  # the status bar's business

    async def add_error(self, message: str, title: str = "Error") -> ErrorCard:
        await self._close_segment()
        self.errors.append(message)
        card = ErrorCard(message, title)
        await self.mount(card)
        return card

    async def _text(self, text: str) -> None:
        if not text:
            return
        if self._open is None:
            if not text.strip():
                return  # no empty segment for the whitespace between a tool call and text
            self._open = AnswerMessage()
            self.segments.append(self._open)
            await self.mount(self._open)
        await self._open.write(text)

    async def _reasoning(self, event: ReasoningDelta) -> None:
        if self.reasoning is None:
            self.reasoning = ReasoningBlock()
            await self.mount(self.reasoning)
        await self.reasoning.write(event.text, event.step)

    async def _close_segment(self) -> None:
        if self._open is not None:
            segment, self._open = self._open, None
            await segment.finish()

    async def stop_streams(self) -> None:
        """Flush every stream (a run that ended without a FinalEvent, e.g. a crash)."""
        await self._close_segment()
        if self.reasoning is not None:
            await self.reasoning.finish()
        for card in self.cards.values():
            card.cancel()

    async def _final(self, event: FinalEvent) -> None:
        self.final = event
        await self.stop_streams()
        if not self.answer_text.strip() and event.content.strip():
            # Nothing streamed as text (e.g. structured output): show the answer itself.
            segment = AnswerMessage()
            self.segments.append(segment)
            await self.mount(segment)
            await segment.write(event.content)
            await segment.finish()
        if event.citations:
            await self.mount(Citations(event.citations))
        if event.stopped_by is not None:
            label = STOP_LABELS.get(event.stopped_by, f"stopped: {event.stopped_by}")
            if event.reason and event.stopped_by not in ("cancelled", "error"):
                label = f"{label} ({event.reason})"
            await self.mount(StopMarker(Content(f"⏹ {label}")))
