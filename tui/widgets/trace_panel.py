"""The trace panel (Ctrl+T): the current turn's span tree, live."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import Static

from agent.events import Event
from tui.trace_tree import TurnTrace


class TracePanel(VerticalScroll):
    """Hidden until toggled; the app feeds it the turn's events."""

    DEFAULT_CSS = """
    TracePanel { width: 58; background: $panel; border-left: solid $foreground 10%; }
    TracePanel.-hidden { display: none; }
    TracePanel > #trace-title { padding: 0 1; text-style: bold; color: $text-muted; }
    TracePanel > #trace-tree { padding: 0 1; }
    TracePanel .-error { color: $error; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, classes="-hidden")
        self.trace = TurnTrace()

    def compose(self) -> ComposeResult:
        yield Static("Trace (this turn)", id="trace-title")
        yield Static(Content("No turn yet."), id="trace-tree")

    def begin_turn(self) -> None:
        self.trace = TurnTrace()
        self._render_tree()

    def handle(self, event: Event) -> None:
        if self.trace.handle(event):
            self._render_tree()

    @property
    def text(self) -> str:
        return "\n".join(self.trace.lines())

    def _render_tree(self) -> None:
        tree = self.query_one("#trace-tree", Static)
        tree.update(Content(self.text or "Running…"))
