"""The prompt line, with shell-like history on Up/Down."""

from __future__ import annotations

from textual.binding import Binding
from textual.widgets import Input


class PromptInput(Input):
    """Up recalls older prompts, Down newer ones, and past the newest the draft
    that was being typed before the user started browsing."""

    BINDINGS = [  # noqa: RUF012 (Textual's declaration style)
        Binding("up", "history(-1)", "Previous prompt", show=False),
        Binding("down", "history(1)", "Next prompt", show=False),
    ]

    DEFAULT_CSS = """
    PromptInput { margin: 0 0 0 0; border: tall $accent 50%; }
    PromptInput:focus { border: tall $accent; }
    """

    def __init__(self, *, history: list[str] | None = None, id: str | None = None) -> None:
        super().__init__(placeholder="Message edge-agent…  (Ctrl+P: commands)", id=id)
        self.history: list[str] = list(history or [])
        self._index = len(self.history)
        self._draft = ""

    def remember(self, prompt: str) -> None:
        if prompt and (not self.history or self.history[-1] != prompt):
            self.history.append(prompt)
        self._index = len(self.history)
        self._draft = ""

    def action_history(self, direction: int) -> None:
        if not self.history:
            return
        if self._index == len(self.history):
            self._draft = self.value
        index = max(0, min(len(self.history), self._index + direction))
        if index == self._index:
            return
        self._index = index
        self.value = self.history[index] if index < len(self.history) else self._draft
        self.cursor_position = len(self.value)
