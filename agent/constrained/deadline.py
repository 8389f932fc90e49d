"""Work that must finish within a deadline, on a thread the caller stops waiting for."""

from __future__ import annotations

import threading
from collections.abc import Callable


def finished_within(seconds: float, work: Callable[[], None], name: str) -> bool:
    """Run `work` on a daemon thread; whether it ended within `seconds`.

    An overrun is abandoned, not stopped (Python cannot stop a thread): the work must be
    bounded by its own limits (llguidance's fuel, the schema size cap), and report its
    outcome through what it closes over.
    """
    thread = threading.Thread(target=work, name=name, daemon=True)
    thread.start()
    thread.join(seconds)
    return not thread.is_alive()
