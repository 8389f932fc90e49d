"""One model, one generation at a time: a bounded first-come queue in front of it.

MLX arrays belong to the thread that made them, so every generation runs on the one
model thread (agent.model_thread) and requests take turns. A request waits in a queue of
at most `max_waiting`; one more is refused at once (429 with `Retry-After`, estimated
from recent service times) rather than left to time out.

A generation is owned by the scheduler, not by the HTTP request that asked for it: it
runs as its own task and holds the model until the engine's stream has really ended.
A client that goes away only sets the generation's cancel flag, which the decode loop
reads before every token, so the model is free again within a token, and the next
request cannot start while the model thread is still busy with the last one.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from dataclasses import dataclass, field


class QueueFull(Exception):
    """No room to wait: the request is refused (429)."""

    def __init__(self, waiting: int, retry_after: int) -> None:
        super().__init__(f"{waiting} request(s) waiting")
        self.waiting = waiting
        self.retry_after = retry_after


@dataclass
class Counters:
    """What the scheduler did, for `/health` and tests."""

    completed: int = 0
    cancelled: int = 0  # the client went away (or the server stopped) mid-request
    failed: int = 0  # an internal error (500)
    rejected: int = 0  # refused because the queue was full


@dataclass(eq=False)
class Ticket:
    """One request's place: waiting, then holding the model until released."""

    cancel: threading.Event = field(default_factory=threading.Event)
    enqueued: float = field(default_factory=time.perf_counter)
    started: float = 0.0
    released: bool = False

    @property
    def queue_wait_s(self) -> float:
        return (self.started or time.perf_counter()) - self.enqueued


class Scheduler:
    """Admission, FIFO order and cancellation for the one model."""

    def __init__(self, max_waiting: int) -> None:
        self.max_waiting = max_waiting
        self.counters = Counters()
        self.waiting = 0
        self.running = 0
        self._lock: asyncio.Lock | None = None
        self._live: set[Ticket] = set()
        self._service_s = 1.0  # a moving average of how long a request holds the model

    def admit(self) -> Ticket:
        """A place in the queue, or QueueFull when it has none left."""
        busy = self._lock is not None and self._lock.locked()
        if busy and self.waiting >= self.max_waiting:
            self.counters.rejected += 1
            raise QueueFull(self.waiting, self.retry_after())
        ticket = Ticket()
        self._live.add(ticket)
        self.waiting += 1
        return ticket

    async def wait(self, ticket: Ticket) -> None:
        """Wait for the model in turn. Cancelling the waiting task withdraws the ticket."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        try:
            await self._lock.acquire()
        except BaseException:
            self._live.discard(ticket)
            raise
        finally:
            self.waiting -= 1
        ticket.started = time.perf_counter()
        self.running += 1

    def release(self, ticket: Ticket) -> None:
        """Give the model back (once per ticket, whoever calls it)."""
        if ticket.released:
            return
        ticket.released = True
        self._live.discard(ticket)
        self.running -= 1
        held = time.perf_counter() - ticket.started
        self._service_s = 0.8 * self._service_s + 0.2 * held
        assert self._lock is not None
        self._lock.release()

    def retry_after(self) -> int:
        """Seconds until a place is likely free: the queue ahead times a request's time."""
        return max(1, math.ceil(self._service_s * (self.waiting + 1)))

    def cancel_all(self) -> None:
        """Stop every generation at its next token (the server is shutting down).
        Thread-safe: called from a signal handler."""
        for ticket in list(self._live):
            ticket.cancel.set()
