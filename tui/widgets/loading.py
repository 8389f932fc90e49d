"""Model loading progress (build, download, conversion, weights) over the chat."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label, ProgressBar

from agent.progress import amount_text


class LoadingPanel(Vertical):
    """Shows the current phase of a `ProgressCallback` and its bar."""

    DEFAULT_CSS = """
    LoadingPanel {
        height: auto; display: none;
        background: $boost; padding: 0 2; border-bottom: solid $accent 40%;
    }
    LoadingPanel.-active { display: block; }
    LoadingPanel Label { color: $text; }
    LoadingPanel ProgressBar { width: 100%; }
    """

    def compose(self) -> ComposeResult:
        yield Label("", id="phase", markup=False)
        yield ProgressBar(total=None, show_eta=False, id="bar")

    def start(self, what: str) -> None:
        self.add_class("-active")
        self.query_one("#phase", Label).update(what)
        self.query_one("#bar", ProgressBar).update(total=None, progress=0)

    def update_progress(self, description: str, completed: float, total: float | None) -> None:
        self.add_class("-active")
        amount = amount_text(description, completed, total)
        self.query_one("#phase", Label).update(f"{description}  {amount}".rstrip())
        bar = self.query_one("#bar", ProgressBar)
        if total:
            bar.update(total=total, progress=completed)
        else:
            bar.update(total=None)

    def stop(self) -> None:
        self.remove_class("-active")

    @property
    def active(self) -> bool:
        return self.has_class("-active")
