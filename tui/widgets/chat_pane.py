"""The scrolling conversation: user prompts, assistant turns, errors."""

from __future__ import annotations

from collections.abc import Iterable

from textual.containers import VerticalScroll
from textual.widgets import Static

from agent.events import Event
from agent.session_replay import ReplayTurn
from tui.widgets.error_card import ErrorCard
from tui.widgets.message import AnswerMessage, UserMessage
from tui.widgets.turn import AssistantTurn

WELCOME = (
    "Ask anything. [b]Enter[/b] sends, [b]↑/↓[/b] recall earlier prompts, "
    "[b]Esc[/b] or [b]Ctrl+C[/b] stops the answer, [b]Ctrl+P[/b] opens the commands."
)


class Welcome(Static):
    DEFAULT_CSS = """
    Welcome { color: $text-muted; padding: 1 2; text-align: center; width: 100%; }
    """


class ChatPane(VerticalScroll):
    """Stays scrolled to the newest message until the user scrolls up."""

    DEFAULT_CSS = """
    ChatPane { height: 1fr; padding: 0 1; scrollbar-size-vertical: 1; }
    ChatPane.-hide-reasoning ReasoningBlock { display: none; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.turn: AssistantTurn | None = None

    def on_mount(self) -> None:
        self.mount(Welcome(WELCOME))
        self.anchor()

    @property
    def show_reasoning(self) -> bool:
        return not self.has_class("-hide-reasoning")

    @show_reasoning.setter
    def show_reasoning(self, value: bool) -> None:
        self.set_class(not value, "-hide-reasoning")

    @property
    def turns(self) -> list[AssistantTurn]:
        return list(self.query_children(AssistantTurn))

    async def _drop_welcome(self) -> None:
        await self.query_children(Welcome).remove()

    async def add_user(self, text: str) -> UserMessage:
        await self._drop_welcome()
        message = UserMessage(text)
        await self.mount(message)
        self.anchor()
        return message

    async def start_turn(self) -> AssistantTurn:
        await self._drop_welcome()
        self.turn = AssistantTurn()
        await self.mount(self.turn)
        self.anchor()
        return self.turn

    async def handle(self, event: Event) -> None:
        if self.turn is None:
            await self.start_turn()
        assert self.turn is not None
        await self.turn.handle(event)

    async def end_turn(self) -> None:
        """The run is over (FinalEvent, crash or cancel): no stream stays open."""
        if self.turn is not None:
            await self.turn.stop_streams()
            self.turn = None

    async def add_error(self, message: str, title: str = "Error") -> ErrorCard:
        """An error outside a turn, or one a turn's events did not report."""
        await self._drop_welcome()
        if self.turn is not None:
            return await self.turn.add_error(message, title)
        card = ErrorCard(message, title)
        await self.mount(card)
        return card

    async def flush(self) -> None:
        """Put every buffered token on screen now (snapshots, benchmarks)."""
        for message in self.query(AnswerMessage):
            await message.flush()

    async def clear(self) -> None:
        self.turn = None
        await self.remove_children()
        await self.mount(Welcome(WELCOME))

    async def load_history(self, turns: Iterable[ReplayTurn]) -> None:
        """Show a stored conversation, replayed through the same widgets as a live run."""
        await self.remove_children()
        self.turn = None
        shown = False
        for replay in turns:
            shown = True
            await self.add_user(replay.prompt)
            await self.start_turn()
            for event in replay.events:
                await self.handle(event)
            await self.end_turn()
        if not shown:
            await self.mount(Welcome(WELCOME))
        self.anchor()
