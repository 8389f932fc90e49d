"""Holding back text that may be the start of a stop string or marker."""

from __future__ import annotations

from collections.abc import Iterable


def partial_tail(text: str, markers: Iterable[str]) -> int:
    """Length of the longest suffix of `text` that is a proper prefix of one of `markers`.

    Streaming code emits everything before that suffix and holds the suffix until the
    next piece shows whether the marker completes.
    """
    best = 0
    for marker in markers:
        for n in range(min(len(marker) - 1, len(text)), best, -1):
            if text.endswith(marker[:n]):
                best = n
                break
    return best
