"""The current turn's span tree, as the trace records it, from the run's events.

The same structure agent.tracing exports (`invoke_agent` > `chat` steps and
`execute_tool` calls), kept in the UI so it shows without an OpenTelemetry SDK: what ran,
in which order, how long each part took, which tool failed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from agent.events import Event, FinalEvent, StatsEvent, ToolCallEvent, ToolResultEvent


@dataclass
class SpanRow:
    """One span of the turn: a model step or a tool call."""

    name: str
    duration_s: float | None = None  # None: still running
    detail: str = ""
    error: str | None = None


@dataclass
class TurnTrace:
    """`invoke_agent` and its children, updated event by event."""

    rows: list[SpanRow] = field(default_factory=list)
    total_s: float | None = None
    steps: int = 0
    stopped_by: str | None = None
    _tools: dict[str, SpanRow] = field(default_factory=dict)

    def handle(self, event: Event) -> bool:
        """Take one event; True when the tree changed."""
        if isinstance(event, StatsEvent):
            s = event.stats
            detail = f"{s.prompt_tokens}→{s.generated_tokens} tok, {s.decode_tps:.0f} tok/s"
            if s.constrained:
                detail += f", forced {s.forced_fraction:.0%}"
            self.rows.append(SpanRow(f"chat #{event.step}", s.total_s, detail))
            self.steps = max(self.steps, event.step)
        elif isinstance(event, ToolCallEvent):
            row = SpanRow(f"execute_tool {event.name}")
            self._tools[event.call_id] = row
            self.rows.append(row)
        elif isinstance(event, ToolResultEvent):
            if event.call_id not in self._tools:
                return False
            row = self._tools.pop(event.call_id)
            row.duration_s = event.duration_s
            row.error = event.error
        elif isinstance(event, FinalEvent):
            self.total_s = event.stats.total_s
            self.steps = event.stats.steps
            self.stopped_by = event.stopped_by
        else:
            return False
        return True

    def lines(self) -> list[str]:
        """The tree as text, one span a line."""
        if not self.rows and self.total_s is None:
            return []
        head = "invoke_agent"
        if self.total_s is not None:
            head += f"  {_duration(self.total_s)}, {self.steps} step(s)"
            if self.stopped_by:
                head += f", stopped: {self.stopped_by}"
        else:
            head += "  running…"
        out = [head]
        for i, row in enumerate(self.rows):
            branch = "└─" if i == len(self.rows) - 1 else "├─"
            took = "running…" if row.duration_s is None else _duration(row.duration_s)
            text = f"{branch} {row.name}  {took}"
            if row.detail:
                text += f"  {row.detail}"
            if row.error is not None:
                text += "  ERROR"
            out.append(text)
        return out


def _duration(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"
