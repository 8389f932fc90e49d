"""Live numbers of the model and the conversation, fed by StatsEvents and deltas."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Label, Sparkline

from agent.events import Event, FinalEvent, ReasoningDelta, StatsEvent, TextDelta
from agent.runtime import ModelInfo
from agent.stats import GenerationStats
from tui.widgets import format as fmt

SPARK_POINTS = 30


@dataclass
class Totals:
    prompt_tokens: int = 0
    cached_prompt_tokens: int = 0
    generated_tokens: int = 0

    def add(self, stats: GenerationStats) -> None:
        self.prompt_tokens += stats.prompt_tokens
        self.cached_prompt_tokens += stats.cached_prompt_tokens
        self.generated_tokens += stats.generated_tokens


class StatusBar(Vertical):
    """Two lines: speed of the model, then token counts and memory.

    TTFT is the turn's first step; prefill and decode rates are the latest step's.
    The sparkline shows the recent decode rate: while tokens stream it samples how
    many deltas arrived per second (`live`), and each step adds its measured rate.
    Snapshot tests turn `live` off so nothing depends on the clock.
    """

    DEFAULT_CSS = """
    StatusBar { height: 2; background: $panel; color: $text-muted; padding: 0 1; }
    StatusBar > Horizontal { height: 1; }
    StatusBar Label { height: 1; }
    StatusBar #speed { width: auto; padding-left: 2; }
    StatusBar Sparkline { width: 20; height: 1; margin: 0 1; }
    StatusBar Sparkline > .sparkline--max-color { color: $success; }
    StatusBar Sparkline > .sparkline--min-color { color: $success 40%; }
    StatusBar #model { color: $text; text-style: bold; width: auto; }
    """

    def __init__(
        self,
        *,
        live: bool = True,
        sample_s: float = 0.5,
        clock: Callable[[], float] = time.perf_counter,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.live = live
        self.sample_s = sample_s
        self.clock = clock
        self.model_label = "no model"
        self.turn = Totals()
        self.session = Totals()
        self.first_ttft_s: float | None = None
        self.last: GenerationStats | None = None
        self.peak_bytes = 0
        self.rates: deque[float] = deque(maxlen=SPARK_POINTS)
        self.generating = False
        self._deltas = 0
        self._sample_t = 0.0

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield Label(self.model_label, id="model", markup=False)
            yield Label("", id="speed", markup=False)
            yield Sparkline([], id="rate")
        yield Label("", id="counts", markup=False)

    def on_mount(self) -> None:
        self.refresh_text()
        if self.live:
            self.set_interval(self.sample_s, self.sample_rate)

    # ----------------------------------------------------------------- inputs
    def set_model(self, info: ModelInfo | None, loading: str | None = None) -> None:
        if loading is not None:
            self.model_label = f"loading {loading}…"
        elif info is None:
            self.model_label = "no model"
        else:
            self.model_label = f"{info.name} · {info.quantization}"
        self.refresh_text()

    def begin_turn(self) -> None:
        self.turn = Totals()
        self.first_ttft_s = None
        self.generating = True
        self._deltas = 0
        self._sample_t = self.clock()
        self.refresh_text()

    def handle(self, event: Event) -> None:
        if isinstance(event, TextDelta | ReasoningDelta):
            self._deltas += 1
        elif isinstance(event, StatsEvent):
            self._step(event.stats)
        elif isinstance(event, FinalEvent):
            self.end_turn()

    def end_turn(self) -> None:
        self.generating = False
        self.refresh_text()

    def reset_session(self, steps: Iterable[GenerationStats] = ()) -> None:
        """A new session (counts restart) or a resumed one (its stored steps count)."""
        self.session = Totals()
        for stats in steps:
            self.session.add(stats)
        self.turn = Totals()
        self.first_ttft_s = None
        self.last = None
        self.peak_bytes = 0
        self.rates.clear()
        self.refresh_text()

    def sample_rate(self) -> None:
        """Timer: the delta rate since the previous sample, while a turn streams."""
        now = self.clock()
        if self.generating and now > self._sample_t and self._deltas:
            self.rates.append(self._deltas / (now - self._sample_t))
            self.query_one("#rate", Sparkline).data = list(self.rates)
        self._deltas = 0
        self._sample_t = now

    def _step(self, stats: GenerationStats) -> None:
        if self.first_ttft_s is None:
            self.first_ttft_s = stats.ttft_s
        self.last = stats
        self.turn.add(stats)
        self.session.add(stats)
        self.peak_bytes = max(self.peak_bytes, stats.peak_memory_bytes)
        if stats.decode_tps > 0:
            self.rates.append(stats.decode_tps)
        self.refresh_text()

    # ----------------------------------------------------------------- output
    def speed_text(self) -> str:
        last = self.last
        ttft = "-" if self.first_ttft_s is None else fmt.duration(self.first_ttft_s)
        prefill = fmt.rate(last.prefill_tps) if last else "-"
        decode = fmt.rate(last.decode_tps) if last else "-"
        return f"TTFT {ttft} │ prefill {prefill} tok/s │ decode {decode} tok/s"

    def counts_text(self) -> str:
        t, s = self.turn, self.session
        grammar = "-" if self.last is None else ("on" if self.last.constrained else "off")
        return (
            f"turn {fmt.count(t.prompt_tokens)}→{fmt.count(t.generated_tokens)} │ "
            f"session {fmt.count(s.prompt_tokens)}→{fmt.count(s.generated_tokens)} │ "
            f"cached {fmt.count(t.cached_prompt_tokens)} │ "
            f"peak {fmt.memory(self.peak_bytes)} │ grammar {grammar}"
        )

    def refresh_text(self) -> None:
        if not self.is_mounted:
            return
        self.query_one("#model", Label).update(self.model_label)
        self.query_one("#speed", Label).update(self.speed_text())
        self.query_one("#counts", Label).update(self.counts_text())
        self.query_one("#rate", Sparkline).data = list(self.rates)
