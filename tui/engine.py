"""The one thread that owns the model, the agent and the session store.

MLX arrays and streams belong to the thread that made them, a `Model` runs one
generation at a time, and SQLite connections are tied to their thread; so loading,
generation and every store call happen on this single thread, in its own asyncio
loop, and the UI thread only ever waits on futures.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


class AgentThread:
    def __init__(self, name: str = "edge-agent-model") -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._started = False

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    def start(self) -> None:
        if not self._started:
            self._started = True
            self._thread.start()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def is_current(self) -> bool:
        return threading.current_thread() is self._thread

    def run(self, coro: Awaitable[T]) -> concurrent.futures.Future[T]:
        """Schedule `coro` on the agent loop."""
        self.start()
        return asyncio.run_coroutine_threadsafe(_as_coroutine(coro), self._loop)

    def call(self, fn: Callable[..., T], *args: Any) -> concurrent.futures.Future[T]:
        """Run the blocking `fn(*args)` on the agent thread."""

        async def wrapper() -> T:
            return fn(*args)

        return self.run(wrapper())

    def stop(self) -> None:
        """Stop the loop once what runs now returns (the thread is a daemon)."""
        if self._started and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._loop.stop)


async def _as_coroutine(awaitable: Awaitable[T]) -> T:
    return await awaitable
