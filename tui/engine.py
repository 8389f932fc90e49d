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
        self._stopped = False
        self._lock = threading.Lock()
        self._pending: set[concurrent.futures.Future[Any]] = set()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_forever()
        finally:
            self._loop.close()

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
        """Schedule `coro` on the agent loop. Once the thread is stopped, the future
        comes back cancelled: whoever awaits it must not wait for a loop that is gone."""
        with self._lock:
            if self._stopped:
                if asyncio.iscoroutine(coro):
                    coro.close()
                cancelled: concurrent.futures.Future[T] = concurrent.futures.Future()
                cancelled.cancel()
                return cancelled
            self.start()
            # A coroutine goes as it is: wrapped, one cancelled before it starts would
            # never be awaited (and warn so at exit).
            runnable = coro if asyncio.iscoroutine(coro) else _as_coroutine(coro)
            future = asyncio.run_coroutine_threadsafe(runnable, self._loop)
            self._pending.add(future)
        future.add_done_callback(self._forget)
        return future

    def _forget(self, future: concurrent.futures.Future[Any]) -> None:
        with self._lock:
            self._pending.discard(future)

    def call(self, fn: Callable[..., T], *args: Any) -> concurrent.futures.Future[T]:
        """Run the blocking `fn(*args)` on the agent thread."""

        async def wrapper() -> T:
            return fn(*args)

        return self.run(wrapper())

    def stop(self) -> None:
        """Stop the loop once what runs now returns (the thread is a daemon), and cancel
        every future not yet done: a UI handler awaiting one would otherwise wait
        forever, and the app's shutdown with it."""
        with self._lock:
            self._stopped = True
            pending, self._pending = self._pending, set()
        for future in pending:
            future.cancel()
        if not self._started:
            self._loop.close()
        elif not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._shutdown)

    def _shutdown(self) -> None:
        """Agent thread: cancelled tasks take one more turn of the loop to unwind."""
        for task in asyncio.all_tasks(self._loop):
            task.cancel()
        self._loop.call_soon(self._loop.stop)


async def _as_coroutine(awaitable: Awaitable[T]) -> T:
    return await awaitable
