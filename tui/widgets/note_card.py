"""A note inside the conversation: something the user should know that is not an
error (a resumed session whose oldest turns were left out of the conversation)."""

from __future__ import annotations

from tui.widgets.error_card import MessageCard


class NoteCard(MessageCard):
    DEFAULT_CSS = """
    NoteCard {
        border: round $warning;
        border-title-color: $warning;
        color: $text-warning;
        background: $warning-muted;
        padding: 0 1;
        margin: 1 0 0 0;
    }
    """

    def __init__(self, message: str, title: str = "Note") -> None:
        super().__init__(message, f"! {title}")
