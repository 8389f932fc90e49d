"""An error inside the conversation, where it happened (also sent as a notification)."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static


class MessageCard(Static):
    """A one-message card in the conversation, its title on the border (each kind of
    card brings its own colours)."""

    def __init__(self, message: str, border_title: str) -> None:
        super().__init__(Content(message))
        self.message = message
        self.border_title = border_title


class ErrorCard(MessageCard):
    DEFAULT_CSS = """
    ErrorCard {
        border: round $error;
        border-title-color: $error;
        color: $text-error;
        background: $error-muted;
        padding: 0 1;
        margin: 1 0 0 0;
    }
    """

    def __init__(self, message: str, title: str = "Error") -> None:
        super().__init__(message, f"✗ {title}")
