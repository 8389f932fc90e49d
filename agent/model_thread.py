"""Running model generation off the event loop, on one dedicated thread.

Decoding is seconds of blocking MLX work per step; done on the event loop it would
freeze a TUI and stall tool calls. MLX streams are per thread (evaluating a lazy array
made on another thread's stream fails with "There is no Stream(cpu, 0) in current
thread"), so all agent generation runs on a single long-lived worker, and around every
call the model's lazy arrays are evaluated so none tied to one thread's stream is left
for another thread to trip over.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor, Future
from typing import Any, TypeVar

from agent.progress import GenerationObserver, GenerationProgress, generation_observer
from agent.token_runtime import GenerationResult, StreamItem
from agent.token_runtime import TokenRuntime as Model

T = TypeVar("T")

_DONE = object()
# A generation stops at the next token once its run is closed; a prefill may take longer.
_PARK_TIMEOUT_S = 10.0


class _ModelThread(Executor):
    """A single daemon worker that is never ended, and parked before the process exits.

    A thread that ran `mx.compile`d code (mlx-lm's samplers and activations) owns a
    thread-local compile cache whose destructor takes the GIL. If such a thread ends,
    or merely wakes up, while the interpreter is finalizing, Python ends it from inside
    that destructor and the process aborts ("terminate called without an active
    exception"); a ThreadPoolExecutor worker, joined at exit, does exactly that. This
    worker is a daemon blocked on a queue, and an exit hook waits until it has finished
    its last job and is back in that blocking wait, where finalization never wakes it.
    """

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._work, name="edge-agent-model", daemon=True)
        self._thread.start()
        atexit.register(self._park)

    def _park(self) -> None:
        parked = threading.Event()
        self._queue.put(parked)
        parked.wait(timeout=_PARK_TIMEOUT_S)  # a job in flight finishes first
        time.sleep(0.02)  # the GIL to the worker, for the few bytecodes back into get()

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()
        self._queue.put((future, fn, args, kwargs))
        return future

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if isinstance(job, threading.Event):
                job.set()
                continue
            future, fn, args, kwargs = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as exc:
                future.set_exception(exc)


class _Tracker:
    """Turns one generation's prefill callbacks and stream items into
    `GenerationProgress` reports: on every phase change, else at most every `every_s`."""

    def __init__(self, observer: GenerationObserver, every_s: float = 0.1) -> None:
        self.observer = observer
        self.every_s = every_s
        self.t0 = time.perf_counter()
        self.last = 0.0
        self.phase = ""
        self.prefilled = self.to_prefill = self.generated = 0
        self.ttft_s: float | None = None

    def _report(self, phase: str) -> None:
        now = time.perf_counter()
        if phase == self.phase and now - self.last < self.every_s:
            return
        self.phase, self.last = phase, now
        progress = GenerationProgress(
            phase, self.prefilled, self.to_prefill, self.generated, now - self.t0, self.ttft_s
        )
        with contextlib.suppress(Exception):  # a display must never break a generation
            self.observer(progress)

    def prefill(self, done: int, total: int) -> None:
        self.prefilled, self.to_prefill = done, total
        self._report("prefill")

    def item(self, item: StreamItem) -> None:
        if isinstance(item, GenerationResult):
            self.generated = item.stats.generated_tokens
            self.prefilled = self.to_prefill = item.stats.prefilled_tokens
            self._report("done")
            return
        if self.ttft_s is None:
            self.ttft_s = time.perf_counter() - self.t0
            self.prefilled = self.to_prefill
        self.generated += len(item.token_ids)
        self._report("decode")


_EXECUTOR: _ModelThread | None = None
_EXECUTOR_LOCK = threading.Lock()


def model_executor() -> Executor:
    global _EXECUTOR
    with _EXECUTOR_LOCK:
        if _EXECUTOR is None:
            _EXECUTOR = _ModelThread()
        return _EXECUTOR


def settle(model: Model) -> None:
    """Evaluate the model's lazy arrays so they can be used from any thread."""
    model.settle()


async def run_on_model_thread(func: Callable[..., T], *args: Any) -> T:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(model_executor(), func, *args)


async def stream_on_model_thread(
    model: Model, prompt: Any, **kwargs: Any
) -> AsyncIterator[StreamItem]:
    """`model.stream(prompt, **kwargs)` as an async iterator fed from the model thread.

    Closing the iterator early (a cancelled run) makes the generation stop at the next
    token and waits for it, so the model is free again when this returns.
    """
    loop = asyncio.get_running_loop()
    items: asyncio.Queue[Any] = asyncio.Queue()
    stop = threading.Event()
    outer_stop = kwargs.pop("should_stop", None)
    observer = generation_observer()
    tracker = _Tracker(observer) if observer is not None else None
    if tracker is not None and kwargs.get("prefill_progress") is None:
        kwargs["prefill_progress"] = tracker.prefill

    def should_stop() -> bool:
        return stop.is_set() or bool(outer_stop and outer_stop())

    def put(item: Any) -> None:
        loop.call_soon_threadsafe(items.put_nowait, item)

    def work() -> None:
        try:
            for item in model.stream(prompt, should_stop=should_stop, **kwargs):
                if tracker is not None:
                    tracker.item(item)
                put(item)
        except BaseException as exc:  # delivered to the consumer
            put(exc)
        finally:
            try:
                settle(model)
            except RuntimeError:
                model.reset_cache()
            put(_DONE)

    try:
        settle(model)  # lazy arrays from a generation on the caller's thread
    except RuntimeError:  # made on yet another thread: start the cache afresh
        model.reset_cache()
    future = loop.run_in_executor(model_executor(), work)
    try:
        while True:
            item = await items.get()
            if item is _DONE:
                break
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        await asyncio.shield(future)
