"""`stop` sequences: the visible text ends before the first one, as OpenAI's API does.

They apply to free text only. A tool call or a `json_schema` answer is decoded under a
grammar and must be completed to be valid, so a stop string inside one does not cut
it; when a stop ends the text, calls that came after it are not returned.
"""

from __future__ import annotations

from agent.stopping import partial_tail
from agent.tool_parser import CALL_END, CALL_START, parse_output


class StopScanner:
    """Streamed text in, text safe to show out; `hit` once a stop sequence was seen."""

    def __init__(self, stops: tuple[str, ...]) -> None:
        self.stops = stops
        self.hit = False
        self._held = ""

    def feed(self, text: str) -> str:
        if self.hit:
            return ""
        if not self.stops:
            return text
        buffer = self._held + text
        found = [i for i in (buffer.find(s) for s in self.stops) if i >= 0]
        if found:
            self.hit = True
            self._held = ""
            return buffer[: min(found)]
        keep = partial_tail(buffer, self.stops)
        self._held = buffer[len(buffer) - keep :] if keep else ""
        return buffer[: len(buffer) - keep]

    def flush(self) -> str:
        held, self._held = self._held, ""
        return "" if self.hit else held


def calls_before_stop(raw: str, stops: tuple[str, ...]) -> int | None:
    """How many calls of `raw` (LFM2 call blocks) come before the first stop sequence in
    its text; None when `raw` has no call blocks (the engine reports calls another way)."""
    if CALL_START not in raw:
        return None
    text = raw
    cut = _first_stop_outside_calls(raw, stops)
    if cut is not None:
        text = raw[:cut]
    return len(parse_output(text, bare=False).calls)


def _first_stop_outside_calls(raw: str, stops: tuple[str, ...]) -> int | None:
    """Where the first stop sequence starts in `raw`, not counting call payloads."""
    pos = 0
    while pos < len(raw):
        start = raw.find(CALL_START, pos)
        end_of_text = start if start >= 0 else len(raw)
        hits = [i for i in (raw.find(s, pos, end_of_text) for s in stops) if i >= 0]
        if hits:
            return min(hits)
        if start < 0:
            return None
        end = raw.find(CALL_END, start)
        if end < 0:
            return None
        pos = end + len(CALL_END)
    return None
