"""The sessions sidebar: stored conversations to open, a new one, delete."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.widgets import Button, Label, ListItem, ListView


@dataclass(frozen=True)
class SessionItem:
    """What the sidebar needs of a stored session (the app maps the store's records)."""

    id: str
    title: str
    detail: str = ""


class SessionRow(ListItem):
    def __init__(self, item: SessionItem, current: bool) -> None:
        super().__init__(classes="-current" if current else "")
        self.item = item

    def compose(self) -> ComposeResult:
        yield Label(Content(self.item.title or "(untitled)"), classes="title")
        if self.item.detail:
            yield Label(Content(self.item.detail), classes="detail")


class SessionsSidebar(Vertical):
    """Posts `Open`, `New` and `Delete`; the app owns the store and calls `show`."""

    BINDINGS = [  # noqa: RUF012
        Binding("delete", "delete", "Delete session"),
    ]

    DEFAULT_CSS = """
    SessionsSidebar { width: 28; background: $panel; border-right: solid $foreground 10%; }
    SessionsSidebar.-hidden { display: none; }
    SessionsSidebar > #sessions-title { padding: 0 1; text-style: bold; color: $text-muted; }
    SessionsSidebar ListView { height: 1fr; background: transparent; }
    SessionsSidebar ListItem { padding: 0 1; height: auto; }
    SessionsSidebar ListItem.-current .title { text-style: bold; color: $accent; }
    SessionsSidebar ListItem .detail { color: $text-muted; }
    SessionsSidebar Horizontal { height: auto; }
    SessionsSidebar Button { width: 1fr; min-width: 8; }
    """

    class Open(Message):
        def __init__(self, session_id: str) -> None:
            super().__init__()
            self.session_id = session_id

    class New(Message):
        pass

    class Delete(Message):
        def __init__(self, session_id: str) -> None:
            super().__init__()
            self.session_id = session_id

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.items: list[SessionItem] = []
        self.current: str | None = None

    def compose(self) -> ComposeResult:
        yield Label("Sessions", id="sessions-title")
        yield ListView(id="session-list")
        with Horizontal():
            yield Button("New", id="new-session", compact=True)
            yield Button("Delete", id="delete-session", compact=True, variant="error")

    async def show(self, items: Sequence[SessionItem], current: str | None) -> None:
        self.items = list(items)
        self.current = current
        view = self.query_one(ListView)
        await view.clear()
        await view.extend(SessionRow(item, item.id == current) for item in self.items)
        for i, item in enumerate(self.items):
            if item.id == current:
                view.index = i

    def selected(self) -> SessionItem | None:
        view = self.query_one(ListView)
        child = view.highlighted_child
        return child.item if isinstance(child, SessionRow) else None

    def on_list_view_selected(self, event: ListView.Selected) -> None:
        event.stop()
        if isinstance(event.item, SessionRow):
            self.post_message(self.Open(event.item.item.id))

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "new-session":
            self.post_message(self.New())
        elif event.button.id == "delete-session":
            self.action_delete()

    def action_delete(self) -> None:
        item = self.selected()
        if item is not None:
            self.post_message(self.Delete(item.id))
