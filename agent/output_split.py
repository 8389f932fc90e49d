"""Streaming split of model output into answer text, reasoning and tool-call text.

The decode loop hands out text in arbitrary pieces, so a marker such as `<think>` can
arrive split across chunks; the splitter holds back any tail that could still become a
marker and releases it once it cannot. Call payloads are never shown as text: they are
reported whole, once parsed, as tool-call events.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from agent.stopping import partial_tail
from agent.tool_parser import CALL_END, CALL_START

THINK_START = "<think>"
THINK_END = "</think>"

Kind = Literal["text", "reasoning", "call"]

# Which marker leaves each mode, and where it leads.
_EXITS: dict[Kind, tuple[tuple[str, Kind], ...]] = {
    "text": ((THINK_START, "reasoning"), (CALL_START, "call")),
    "reasoning": ((THINK_END, "text"),),
    "call": ((CALL_END, "text"),),
}


@dataclass(frozen=True)
class Segment:
    kind: Kind
    text: str


class OutputSplitter:
    """Feed chunks in order; get back segments of text, reasoning and call payload."""

    def __init__(self) -> None:
        self.mode: Kind = "text"
        self._held = ""

    def feed(self, chunk: str) -> list[Segment]:
        out: list[Segment] = []
        buffer = self._held + chunk
        self._held = ""
        while buffer:
            exits = _EXITS[self.mode]
            hits = [(buffer.find(m), m, nxt) for m, nxt in exits if m in buffer]
            if hits:
                at, marker, nxt = min(hits)
                if at:
                    out.append(Segment(self.mode, buffer[:at]))
                self.mode = nxt
                buffer = buffer[at + len(marker) :]
                continue
            keep = partial_tail(buffer, [m for m, _ in exits])
            emit = buffer[: len(buffer) - keep]
            if emit:
                out.append(Segment(self.mode, emit))
            self._held = buffer[len(buffer) - keep :]
            break
        return out

    def flush(self) -> list[Segment]:
        held, self._held = self._held, ""
        return [Segment(self.mode, held)] if held else []
