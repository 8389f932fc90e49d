"""One card per tool call: name, arguments, a running indicator, then the outcome."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.highlight import highlight
from textual.widgets import Static

from agent.events import ToolCallEvent, ToolResultEvent
from tui.widgets import format as fmt

if TYPE_CHECKING:
    from textual.timer import Timer

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
RESULT_LINES = 12
RESULT_CHARS = 1500


def json_content(value: Any) -> Content:
    """`value` as indented, highlighted JSON."""
    text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    return highlight(text, language="json")


def result_content(text: str) -> Content:
    """A tool's output; JSON output is highlighted, anything else stays plain."""
    preview = fmt.clip(text, RESULT_LINES, RESULT_CHARS)
    stripped = text.strip()
    if stripped[:1] in "[{" and preview == text:
        try:
            return json_content(json.loads(stripped))
        except ValueError:
            pass
    return Content(preview)


class ToolCard(Vertical):
    """Tool call `call_id`: running until its `ToolResultEvent` arrives."""

    DEFAULT_CSS = """
    ToolCard {
        height: auto;
        border: round $accent 60%;
        border-title-color: $accent;
        border-subtitle-color: $text-muted;
        padding: 0 1;
        margin: 1 0 0 0;
    }
    ToolCard.-done { border: round $success 60%; border-subtitle-color: $success; }
    ToolCard.-failed { border: round $error; border-subtitle-color: $error; }
    ToolCard.-cancelled { border: round $warning 60%; border-subtitle-color: $warning; }
    ToolCard > .tool-args { color: $text; }
    ToolCard > .tool-result { margin-top: 1; color: $text-muted; }
    ToolCard > .tool-error { margin-top: 1; color: $error; }
    """

    def __init__(self, event: ToolCallEvent) -> None:
        super().__init__()
        self.call = event
        self.result: ToolResultEvent | None = None
        self.border_title = f"⚙ {event.name}"
        self._frame = 0
        self._timer: Timer | None = None

    @property
    def state(self) -> str:
        if self.result is None:
            return "cancelled" if self.has_class("-cancelled") else "running"
        return "failed" if self.result.error is not None else "done"

    def compose(self) -> ComposeResult:
        yield Static(json_content(self.call.arguments), classes="tool-args")

    def on_mount(self) -> None:
        self._show_running()
        if self.app.animation_level != "none":
            self._timer = self.set_interval(0.1, self._spin)

    def _spin(self) -> None:
        self._frame += 1
        self._show_running()

    def _show_running(self) -> None:
        if self.result is None and not self.has_class("-cancelled"):
            self.border_subtitle = f"{SPINNER[self._frame % len(SPINNER)]} running"

    def _stop_spinner(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None

    async def finish(self, event: ToolResultEvent) -> None:
        self.result = event
        self._stop_spinner()
        # A replayed result has no duration (the store does not keep it).
        took = f" in {fmt.duration(event.duration_s)}" if event.duration_s > 0 else ""
        if event.error is not None:
            self.add_class("-failed")
            self.border_subtitle = f"✗ failed{took}"
            await self.mount(Static(Content(event.error), classes="tool-error"))
        else:
            self.add_class("-done")
            self.border_subtitle = f"✓ done{took}"
            await self.mount(Static(result_content(event.content), classes="tool-result"))

    def cancel(self) -> None:
        """The run ended before this call returned."""
        if self.result is None:
            self._stop_spinner()
            self.add_class("-cancelled")
            self.border_subtitle = "⏹ not finished"
