"""The model's reasoning (`<think>` text) for one turn, in a collapsible block."""

from __future__ import annotations

from textual.widgets import Collapsible

from tui.widgets.message import AnswerMessage


class ReasoningBlock(Collapsible):
    """Reasoning streams into a block that is open while the model thinks.

    It folds itself once the turn is over, so the answer stays in view; the user can
    unfold it again (click, or Enter on its title). The "toggle reasoning" command
    hides every block instead, for people who never want to see them.
    """

    DEFAULT_CSS = """
    ReasoningBlock {
        border: none;
        border-left: wide $secondary;
        background: transparent;
        padding: 0;
        margin: 1 0 0 0;
        color: $text-muted;
    }
    ReasoningBlock > Contents { padding: 0 0 0 1; }
    ReasoningBlock AnswerMessage { color: $text-muted; }
    """

    def __init__(self) -> None:
        self.body = AnswerMessage()
        super().__init__(self.body, title="Reasoning…", collapsed=False)
        self._steps: set[int] = set()

    @property
    def text(self) -> str:
        return self.body.text

    async def write(self, text: str, step: int) -> None:
        if self._steps and step not in self._steps:
            await self.body.write("\n\n")
        self._steps.add(step)
        await self.body.write(text)

    async def finish(self) -> None:
        await self.body.finish()
        self.title = "Reasoning"
        self.collapsed = True
