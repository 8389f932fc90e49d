"""The modal that asks before a tool that requires approval runs."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

from tui.widgets.tool_card import json_content


class ApprovalScreen(ModalScreen[bool]):
    """Dismisses with True (run the tool) or False (refuse; the model is told)."""

    BINDINGS = [  # noqa: RUF012
        Binding("y", "decide(True)", "Allow"),
        Binding("n,escape", "decide(False)", "Deny"),
    ]

    DEFAULT_CSS = """
    ApprovalScreen { align: center middle; }
    ApprovalScreen > Vertical {
        width: 70; max-width: 90%; height: auto; max-height: 80%;
        border: thick $warning; background: $surface; padding: 1 2;
    }
    ApprovalScreen #question { text-style: bold; margin-bottom: 1; }
    ApprovalScreen #description { color: $text-muted; margin-bottom: 1; }
    ApprovalScreen VerticalScroll { height: auto; max-height: 12; background: $panel; }
    ApprovalScreen Horizontal { height: auto; align-horizontal: right; margin-top: 1; }
    ApprovalScreen Button { margin-left: 2; }
    """

    def __init__(self, tool_name: str, arguments: dict[str, Any], description: str = "") -> None:
        super().__init__()
        self.tool_name = tool_name
        self.arguments = arguments
        self.description = description

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(
                Content.assemble("Run the tool ", (self.tool_name, "bold $warning"), "?"),
                id="question",
            )
            if self.description:
                yield Static(Content(self.description), id="description")
            with VerticalScroll():
                yield Static(json_content(self.arguments))
            with Horizontal():
                yield Button("Allow (y)", variant="success", id="allow")
                yield Button("Deny (n)", variant="error", id="deny")

    def on_mount(self) -> None:
        self.query_one("#deny", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "allow")

    def action_decide(self, allow: bool) -> None:
        self.dismiss(allow)
