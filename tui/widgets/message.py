"""Chat messages: the user's prompt and the assistant's streamed markdown answer."""

from __future__ import annotations

import asyncio
import contextlib
import time

from textual.widgets import Markdown, Static


class UserMessage(Static):
    """What the user typed, shown as plain text (never parsed as markup)."""

    DEFAULT_CSS = """
    UserMessage {
        background: $primary-background;
        color: $text;
        padding: 0 1;
        margin: 1 0 0 8;
        border-left: thick $primary;
    }
    """

    def __init__(self, text: str) -> None:
        super().__init__(text, markup=False)
        self.text = text


class AnswerMessage(Markdown):
    """Answer text that grows token by token.

    `write` only buffers; a background task appends what arrived with
    `Markdown.append`, which re-parses just the last block. Per token the UI pays a
    list append; the markdown work (parse, layout, render) runs at most 10 times a
    second, and less often when it is expensive: the pause after a flush is at least
    `cost_factor` times what the flush cost, so a long answer (whose layout grows with
    its length) never takes more than about a quarter of a core. The UI thread's
    Python competes with the model thread's for the GIL, and flushing 30 times a
    second halved the tiny model's decode rate on 2 cores (see benchmarks/tui.py).
    """

    DEFAULT_CSS = """
    AnswerMessage {
        margin: 0;
        padding: 0 1;
        background: transparent;
    }
    """

    flush_interval_s = 0.1
    cost_factor = 3.0

    def __init__(self, markdown: str = "") -> None:
        super().__init__(markdown)
        self._am_written: list[str] = [markdown] if markdown else []
        self._am_pending: list[str] = []
        self._am_wake = asyncio.Event()
        self._am_closing = asyncio.Event()
        self._am_flusher: asyncio.Task[None] | None = None

    @property
    def text(self) -> str:
        """Everything written so far (the screen may lag by one flush interval)."""
        return "".join(self._am_written)

    async def write(self, fragment: str) -> None:
        if not fragment:
            return
        self._am_written.append(fragment)
        self._am_pending.append(fragment)
        self._am_wake.set()
        if self._am_flusher is None:
            self._am_flusher = asyncio.create_task(self._flush_loop())

    async def _flush_loop(self) -> None:
        while True:
            await self._am_wake.wait()
            self._am_wake.clear()
            cost = 0.0
            if self._am_pending:
                started = time.perf_counter()
                text = "".join(self._am_pending)
                self._am_pending.clear()
                await self.append(text)
                if not self._am_closing.is_set():
                    await self._refreshed()
                cost = time.perf_counter() - started
            if self._am_closing.is_set():
                if not self._am_pending:
                    return
                continue  # written while the last append ran
            # Wait before the next append, unless finish() wants it all now.
            pause = max(self.flush_interval_s, self.cost_factor * cost)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._am_closing.wait(), pause)

    async def _refreshed(self) -> None:
        """Until the screen has laid out and drawn the last append (at most 1 s)."""
        done = asyncio.get_running_loop().create_future()

        def drawn() -> None:
            if not done.done():
                done.set_result(None)

        self.call_after_refresh(drawn)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(done, 1.0)

    async def flush(self) -> None:
        """Append what is buffered now, without waiting for the next interval."""
        if self._am_pending:
            text = "".join(self._am_pending)
            self._am_pending.clear()
            await self.append(text)

    async def finish(self) -> None:
        """Put everything written on screen; a later write starts a new flush task."""
        if self._am_flusher is None:
            return
        self._am_closing.set()
        self._am_wake.set()
        try:
            await self._am_flusher
        finally:
            self._am_flusher = None
            self._am_closing.clear()
