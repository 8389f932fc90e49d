"""Progress reporting for long work (model build, download, conversion, ingest).

Library code reports through a `ProgressCallback`; the CLI renders it with rich on
stderr, the TUI with its own widget, and tests can record it.

A phase's unit follows from its description (`unit_of`): phases that move bytes start
with "Downloading", "Extracting" or "Ingesting" and count bytes; every other phase
counts steps or items and is drawn as "done/total" (nothing when the total is 1), and a
phase whose total is unknown (None) is a spinner.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

# (description, completed, total-or-None)
ProgressCallback = Callable[[str, float, float | None], None]


@dataclass(frozen=True)
class GenerationProgress:
    """Where one generation is, for a live display (reported from the model thread).

    `phase` is "prefill" (the prompt is being fed: `prefilled` of `to_prefill` tokens),
    "decode" (tokens stream: `generated` so far) or "done". Times are seconds since the
    generation started; `ttft_s` is set once the first token is out.
    """

    phase: str
    prefilled: int = 0
    to_prefill: int = 0
    generated: int = 0
    elapsed_s: float = 0.0
    ttft_s: float | None = None

    @property
    def decode_tps(self) -> float | None:
        """Tokens per second since the first token (None before the second one)."""
        if self.ttft_s is None or self.generated < 2 or self.elapsed_s <= self.ttft_s:
            return None
        return (self.generated - 1) / (self.elapsed_s - self.ttft_s)


# What an observer returns is ignored (a lambda that posts a message may return a bool).
GenerationObserver = Callable[[GenerationProgress], object]
_observer: ContextVar[GenerationObserver | None] = ContextVar("generation_observer", default=None)


def observe_generations(observer: GenerationObserver | None) -> None:
    """Report the progress of every generation started from the current asyncio task
    (or thread) from now on to `observer`, a few times a second; None stops it.

    An agent run streams typed events per step; this is the finer, per-token view a
    live status bar needs (prefill progress before the first token, decode rate while
    a tool call is being written), without the UI reaching into the model.
    """
    _observer.set(observer)


def generation_observer() -> GenerationObserver | None:
    """The observer set with `observe_generations` for the current context, if any."""
    return _observer.get()


BYTE_PHASES = ("Downloading", "Extracting", "Ingesting")


def unit_of(description: str) -> str:
    """ "bytes" for phases that move bytes (downloads, extraction, ingest), else ""."""
    return "bytes" if description.startswith(BYTE_PHASES) else ""


def amount_text(description: str, completed: float, total: float | None) -> str:
    """What a progress display shows after the bar: "1.2/4.0 MB", "3/8", or ""."""
    if unit_of(description) == "bytes":
        if total:
            return f"{completed / 2**20:.1f}/{total / 2**20:.1f} MB"
        return f"{completed / 2**20:.1f} MB" if completed else ""
    if total and total > 1:
        return f"{completed:.0f}/{total:.0f}"
    return ""


def silent_progress(description: str, completed: float, total: float | None) -> None:
    """A `ProgressCallback` that shows nothing."""


@contextmanager
def console_progress() -> Iterator[ProgressCallback]:
    """A rich progress display on stderr; a no-op display when stderr is not a TTY."""
    if not sys.stderr.isatty():
        shown: set[str] = set()

        def plain(description: str, completed: float, total: float | None) -> None:
            # One line per phase keeps logs readable when nobody watches a bar.
            if description not in shown:
                shown.add(description)
                print(f"{description}...", file=sys.stderr, flush=True)

        yield plain
        return

    from rich.console import Console
    from rich.progress import (
        BarColumn,
        Progress,
        ProgressColumn,
        Task,
        TaskID,
        TextColumn,
        TimeElapsedColumn,
    )
    from rich.text import Text

    class AmountColumn(ProgressColumn):
        """Bytes for downloads, a count for steps, nothing for a spinner."""

        def render(self, task: Task) -> Text:
            return Text(amount_text(task.description, task.completed, task.total))

    tasks: dict[str, TaskID] = {}
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        AmountColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=False,
    ) as bar:

        def update(description: str, completed: float, total: float | None) -> None:
            if description not in tasks:
                tasks[description] = bar.add_task(description, total=total)
            bar.update(tasks[description], completed=completed, total=total)

        yield update
