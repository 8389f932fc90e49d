"""A private asyncio event loop on a daemon thread, for the MCP client sessions.

The MCP SDK is async (anyio), and a session's transport must be opened and closed by
the same task. The registry and the agent are called from any thread and any loop
(`Agent.run` makes a new loop per run), so the sessions live on one loop of their own
for as long as the servers run, and everything else submits coroutines to it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class LoopThread:
    """An event loop running on its own daemon thread until `stop()`."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            pending = asyncio.all_tasks(self.loop)
            for task in pending:
                task.cancel()
            if pending:
                with contextlib.suppress(Exception):
                    self.loop.run_until_complete(
                        asyncio.wait(pending, timeout=5.0)  # bounded: never hang the exit
                    )
            self.loop.close()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run `coro` on the loop and wait for it from another thread; on timeout it is
        cancelled and TimeoutError raised."""
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("LoopThread.run() called from its own loop")
        future = self.submit(coro)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError from None

    async def run_async(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await `coro` on this loop from another loop; cancelling the awaiting task
        cancels `coro` too (a tool timeout reaches the MCP request)."""
        return await asyncio.wrap_future(self.submit(coro))

    def stop(self, timeout: float = 10.0) -> None:
        if self.loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # already stopping
            self.loop.call_soon_threadsafe(self.loop.stop)
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)
