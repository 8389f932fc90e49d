"""The agent thread's contract with the UI: work runs on one thread, and stopping it
never leaves a caller waiting on a future that cannot finish (an app whose handler
awaited one could not shut down)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading

import pytest

from tui.engine import AgentThread


def test_calls_run_in_order_on_the_agent_thread():
    engine = AgentThread()
    try:
        seen: list[tuple[int, bool]] = []
        futures = [
            engine.call(lambda i=i: seen.append((i, engine.is_current())) or i) for i in range(5)
        ]
        assert [f.result(timeout=30) for f in futures] == list(range(5))
        assert seen == [(i, True) for i in range(5)]
        assert not engine.is_current()
    finally:
        engine.stop()


def test_stop_cancels_what_has_not_finished():
    engine = AgentThread()
    started, release = threading.Event(), threading.Event()

    def blocking() -> str:
        started.set()
        release.wait(30)
        return "done"

    running = engine.call(blocking)
    assert started.wait(30)
    queued = engine.call(lambda: "never")

    async def forever() -> None:
        await asyncio.Event().wait()

    waiting = engine.run(forever())
    engine.stop()
    release.set()
    for future in (running, queued, waiting):
        with pytest.raises(concurrent.futures.CancelledError):
            future.result(timeout=30)


def test_work_after_stop_comes_back_cancelled():
    engine = AgentThread()
    assert engine.call(lambda: 1).result(timeout=30) == 1
    engine.stop()
    late = engine.call(lambda: 2)
    assert late.cancelled()

    async def awaiting() -> None:  # what a UI handler does with a late call
        await asyncio.wrap_future(late)

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(awaiting())


def test_a_never_started_thread_stops_cleanly():
    engine = AgentThread()
    engine.stop()
    assert engine.run(asyncio.sleep(0)).cancelled()
