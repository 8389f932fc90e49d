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
from agent.model_info import ModelInfo
from agent.progress import GenerationProgress
from agent.stats import GenerationStats
from tui.widgets import format as fmt

SPARK_POINTS = 30
SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


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
    While a step runs, `progress` reports (GenerationProgress) make them live: during
    the prefill a spinner and prefilled/total tokens, then the step's TTFT, its decode
    rate and the turn's tokens so far, redrawn at every sample (twice a second).
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
        self.current: GenerationProgress | None = None  # the running step, live
        self._current_t = 0.0  # clock() when `current` arrived
        self._spin = 0
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
            engine = f" · {info.engine}" if info.engine else ""
            self.model_label = f"{info.name} · {info.quantization}{engine}"
        self.refresh_text()

    def begin_turn(self) -> None:
        self.turn = Totals()
        self.first_ttft_s = None
        self.generating = True
        self.current = None
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

    def progress(self, progress: GenerationProgress) -> None:
        """A live report of the running step (from the model thread, a few per second)."""
        if not self.generating:
            return
        self.current = None if progress.phase == "done" else progress
        self._current_t = self.clock()
        self.refresh_text()

    def end_turn(self) -> None:
        self.generating = False
        self.current = None
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
        if self.generating:  # the spinner turns and the live numbers age
            self._spin += 1
            self.refresh_text()

    def _step(self, stats: GenerationStats) -> None:
        if self.first_ttft_s is None:
            self.first_ttft_s = stats.ttft_s
        self.current = None
        self.last = stats
        self.turn.add(stats)
        self.session.add(stats)
        self.peak_bytes = max(self.peak_bytes, stats.peak_memory_bytes)
        if stats.decode_tps > 0:
            self.rates.append(stats.decode_tps)
        self.refresh_text()

    # ----------------------------------------------------------------- output
    def speed_text(self) -> str:
        live = self.current
        if live is not None and live.ttft_s is None:  # the prompt is being prefilled
            elapsed = live.elapsed_s + max(0.0, self.clock() - self._current_t)
            spinner = SPINNER[self._spin % len(SPINNER)]
            return (
                f"{spinner} prefill {fmt.count(live.prefilled)}/{fmt.count(live.to_prefill)} "
                f"tok │ {fmt.duration(elapsed)}"
            )
        last = self.last
        ttft_s = self.first_ttft_s
        if ttft_s is None and live is not None:
            ttft_s = live.ttft_s  # the turn's first step is still running
        ttft = "-" if ttft_s is None else fmt.duration(ttft_s)
        if live is not None:
            assert live.ttft_s is not None
            prefill = fmt.rate(live.to_prefill / live.ttft_s) if live.ttft_s > 0 else "-"
            decode = fmt.rate(live.decode_tps or 0.0)
        else:
            prefill = fmt.rate(last.prefill_tps) if last else "-"
            decode = fmt.rate(last.decode_tps) if last else "-"
        return f"TTFT {ttft} │ prefill {prefill} tok/s │ decode {decode} tok/s"

    def live_generated(self) -> int:
        """The turn's generated tokens so far, the running step's included."""
        live = self.current.generated if self.current is not None else 0
        return self.turn.generated_tokens + live

    def counts_text(self) -> str:
        t, s = self.turn, self.session
        live = self.current.generated if self.current is not None else 0
        grammar = "-" if self.last is None else ("on" if self.last.constrained else "off")
        return (
            f"turn {fmt.count(t.prompt_tokens)}→{fmt.count(t.generated_tokens + live)} │ "
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
