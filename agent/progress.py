"""Progress reporting for long work (model build, download, conversion, ingest).

Library code reports through a `ProgressCallback`; the CLI renders it with rich on
stderr, the TUI with its own widget, and tests can record it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

# (description, completed, total-or-None)
ProgressCallback = Callable[[str, float, float | None], None]


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
        DownloadColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    tasks: dict[str, int] = {}
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=False,
    ) as bar:

        def update(description: str, completed: float, total: float | None) -> None:
            if description not in tasks:
                tasks[description] = bar.add_task(description, total=total)
            bar.update(tasks[description], completed=completed, total=total)

        yield update
