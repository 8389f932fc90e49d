"""An error inside the conversation, where it happened (also sent as a notification)."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static


class ErrorCard(Static):
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
        super().__init__(Content(message))
        self.message = message
        self.border_title = f"✗ {title}"
