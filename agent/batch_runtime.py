"""Several constrained generations of one model, decoding side by side.

One forward pass per step serves every row of the batch: on a CPU a small model's step
costs about the same for a few rows as for one (the weights are read once), so
documents extracted together finish sooner than one after another.

This module is the per-row protocol, the same for every engine: forced runs, mask,
sample, check, resample, fallback, advance, in the single path's order and under the
same budget, so a row's output is valid and within `max_tokens` whatever its
neighbours do, and a row whose constraint fails is dropped alone. What differs per
engine is behind `RowEngine`: prefilling a row, drawing the rows' tokens from their
logits, one forward pass over every row's pending tokens, and dropping rows
(`agent.batch_mlx` for MLX, `agent.llamacpp.batch` for llama.cpp's parallel sequences).

Why our own loop rather than an engine's batch generator (mlx-lm's `BatchGenerator`,
llama.cpp's server slots): their logits processors can mask, but cannot refuse a sampled
token and draw again, and cannot feed a run of grammar-forced tokens; the budget
guarantee rests on the first (`DecodeConstraint.check`) and the speed of JSON decoding
on the second.

This module imports no engine: a machine with llama.cpp and without MLX can run it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from agent.sampling import SamplingParams
from agent.stats import GenerationStats
from agent.token_runtime import DecodeConstraint, GenerationResult, Prompt, _Decode

DEFAULT_ROWS = 8  # rows an engine with a fixed number of sequences makes room for


@dataclass
class BatchOutcome:
    """A finished row: its result, or the error that stopped it."""

    key: Any
    result: GenerationResult | None = None
    error: Exception | None = None


@dataclass
class RowStart:
    """A prompt run through the model's prompt cache, ready to join the batch: its
    tokens, how many came from the cache, the logits after the last (the engine's array
    type) and the engine's state of the row (its cache, for MLX)."""

    tokens: list[int]
    cached: int
    logits: Any
    seconds: float
    state: Any = None


@dataclass
class Draw:
    """A row's sampled token, and how to draw again when the constraint refuses it:
    `redraw(refused, budget)` samples without the refused token(s) and falls back to
    the constraint's fallback after `RESAMPLES` refusals, as the single path does."""

    token: int
    redraw: Callable[[int, int], int]


@dataclass
class BatchRow:
    """One generation in the batch (what an engine reads to mask and sample it)."""

    key: Any
    tokens: list[int]  # the prompt
    constraint: DecodeConstraint
    max_tokens: int
    stats: GenerationStats
    started: float
    run: _Decode = field(default_factory=lambda: _Decode(finish="length"))
    generated: list[int] = field(default_factory=list)
    pending: list[int] = field(default_factory=list)  # taken, not yet fed to the model
    logits: Any = None  # after everything fed; None while tokens are pending
    done: bool = False

    @property
    def budget(self) -> int:
        return self.max_tokens - len(self.generated)


class RowEngine(Protocol):
    """An engine's half of a batch. The engine keeps its rows in the order they joined;
    `forward` and `keep` speak of that order."""

    def prefill(self, prompt: Prompt, max_tokens: int) -> RowStart:
        """Run `prompt` through the model's prompt cache (raises for a prompt that
        cannot run: too long, say)."""

    def join(self, start: RowStart) -> None:
        """Make the prefilled row the batch's last row."""

    def sample(self, rows: Sequence[BatchRow]) -> list[Draw]:
        """Mask each row's logits with its constraint (the time counted in its
        `run.constraint_s`) and draw one token per row."""

    def forward(self, pending: list[list[int]]) -> list[tuple[int, Any]]:
        """One pass feeding each row (all rows, in order) a prefix of its pending
        tokens: per row, how many were fed and the logits after the last of them."""

    def keep(self, indices: list[int]) -> None:
        """Drop every row whose index is not in `indices` (ascending)."""

    def close(self) -> None:
        """Free what the engine holds for the batch (idempotent)."""


def supports_batching(model: Any) -> bool:
    """Whether `model` can decode rows side by side: an MLX model whose every cache
    layer has a batch form (pure attention and LFM2's convolution state do), or any
    llama.cpp model (its parallel sequences hold attention and recurrent state)."""
    engine = getattr(model, "engine", None)
    if engine == "llama.cpp":
        return True
    if engine == "mlx":
        from agent.batch_mlx import mlx_can_batch

        return mlx_can_batch(model)
    return False


def row_engine(
    model: Any, sampling: SamplingParams, rows: int, row_tokens: int | None
) -> RowEngine:
    """The engine half for `model` (see `supports_batching`)."""
    if getattr(model, "engine", None) == "llama.cpp":
        from agent.llamacpp.batch import LlamaCppRows

        return LlamaCppRows(model, sampling, rows=rows, row_tokens=row_tokens)
    from agent.batch_mlx import MlxRows

    return MlxRows(model, sampling)


class BatchDecoder:
    """Rows added one by one (each prefilled through the model's prompt cache), decoded
    together one step at a time; finished rows come out of `step` as they end.

    `rows` is the most rows at once and `row_tokens` the most tokens (prompt and output)
    one row holds, for engines that set memory aside up front (llama.cpp); by default a
    row may take the model's whole context. Call `close` (or use `with`) to free it.
    """

    def __init__(
        self,
        model: Any,
        sampling: SamplingParams | None = None,
        *,
        rows: int = DEFAULT_ROWS,
        row_tokens: int | None = None,
    ) -> None:
        self.model = model
        self.sampling = sampling or model.default_sampling
        self._engine = row_engine(model, self.sampling, rows, row_tokens)
        self._rows: list[BatchRow] = []
        self._finished: list[BatchOutcome] = []
        self._eos = model.eos_token_ids

    @property
    def active(self) -> int:
        """Rows decoding now."""
        return len(self._rows)

    def close(self) -> None:
        """Free the engine's batch memory; rows still decoding are abandoned."""
        self._rows = []
        self._engine.close()

    def __enter__(self) -> BatchDecoder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add(self, key: Any, prompt: Prompt, constraint: DecodeConstraint, max_tokens: int) -> None:
        """Prefill `prompt` and add its row; it (or the error that stopped it before it
        started: a prompt too long) comes out of a later `step` under `key`."""
        started = time.perf_counter()
        try:
            start = self._engine.prefill(prompt, max_tokens)
        except Exception as exc:
            self._finished.append(BatchOutcome(key, error=exc))
            return
        stats = GenerationStats(
            prompt_tokens=len(start.tokens),
            cached_prompt_tokens=start.cached,
            constrained=True,
            engine=self.model.engine,
            ttft_s=start.seconds,
        )
        row = BatchRow(key, start.tokens, constraint, max_tokens, stats, started)
        row.logits = start.logits
        self._guarded(row, self._take_forced)
        if row.done:
            return
        self._engine.join(start)
        self._rows.append(row)

    def step(self) -> list[BatchOutcome]:
        """One token for every row that has logits, the forced runs that follow, and one
        forward pass for all; returns the rows that finished (in no particular order)."""
        ready = [row for row in self._rows if row.logits is not None]
        if ready:
            draws = self._engine.sample(ready)
            for row, draw in zip(ready, draws, strict=True):
                row.logits = None

                def take(row: BatchRow, draw: Draw = draw) -> None:
                    self._take_sampled(row, draw)

                self._guarded(row, take)
        self._drop_finished()
        if self._rows:
            self._forward()
        finished, self._finished = self._finished, []
        return finished

    # ------------------------------------------------------------------ steps
    def _take_sampled(self, row: BatchRow, draw: Draw) -> None:
        constraint, run = row.constraint, row.run
        budget = row.budget
        token = draw.token
        t0 = time.perf_counter()
        if not constraint.check(token, budget):
            token = draw.redraw(token, budget)
        constraint.advance(token)
        run.constraint_s += time.perf_counter() - t0
        self._first_token(row)
        row.generated.append(token)
        row.pending.append(token)
        if run.ends_after(token, self._eos, constraint, len(row.generated), row.max_tokens):
            self._finish(row)
            return
        self._take_forced(row)

    def _take_forced(self, row: BatchRow) -> None:
        """Take the tokens the grammar forces now (fed with the row's next pass)."""
        constraint, run = row.constraint, row.run
        while True:
            budget = row.budget
            if run.ends_before_step(budget, None, constraint):
                self._finish(row)
                return
            forced = run.forced(constraint, budget)
            if not forced:
                return
            self._first_token(row)
            row.logits = None  # the logits were for before the run
            row.generated.extend(forced)
            row.pending.extend(forced)
            row.stats.forced_tokens += len(forced)
            if run.ends_after(None, self._eos, constraint, len(row.generated), row.max_tokens):
                self._finish(row)
                return

    def _forward(self) -> None:
        """Feed the rows' pending tokens in one pass; a row's logits count only once its
        whole run is in (an engine may feed a long run over several passes)."""
        fed = self._engine.forward([row.pending for row in self._rows])
        for row, (count, logits) in zip(self._rows, fed, strict=True):
            row.pending = row.pending[count:]
            row.logits = None if row.pending else logits
            row.run.forward_passes += 1

    def _drop_finished(self) -> None:
        keep = [index for index, row in enumerate(self._rows) if not row.done]
        if len(keep) == len(self._rows):
            return
        self._rows = [self._rows[index] for index in keep]
        self._engine.keep(keep)

    # ------------------------------------------------------------------ rows
    def _guarded(self, row: BatchRow, work: Callable[[BatchRow], None]) -> None:
        """Run `work` on one row; an exception ends that row alone."""
        try:
            work(row)
        except Exception as exc:
            row.done = True
            self._finished.append(BatchOutcome(row.key, error=exc))

    def _first_token(self, row: BatchRow) -> None:
        if not row.run.t_first:
            row.run.t_first = time.perf_counter()

    def _finish(self, row: BatchRow) -> None:
        row.done = True
        run, stats = row.run, row.stats
        end = time.perf_counter()
        generated = row.generated
        text = self.model.vocabulary.decode([t for t in generated if t not in self._eos])
        stats.generated_tokens = len(generated)
        if stats.ttft_s > 0:
            stats.prefill_tps = stats.prefilled_tokens / stats.ttft_s
        if len(generated) > 1 and end > run.t_first:
            stats.decode_tps = (len(generated) - 1) / (end - run.t_first)
        stats.total_s = end - row.started
        stats.finish_reason = run.finish
        stats.decode_forward_passes = run.forward_passes
        if generated:
            stats.mask_us_per_token = run.constraint_s * 1e6 / len(generated)
        self._finished.append(BatchOutcome(row.key, GenerationResult(text, generated, stats)))


def fed_length(pending: list[int]) -> int:
    """The longest pass (tokens per row) in which at least half the positions are
    real tokens rather than padding (for engines that pad rows to one length)."""
    rows = len(pending)
    for length in sorted(set(pending), reverse=True):
        if sum(min(n, length) for n in pending) * 2 >= rows * length:
            return length
    return 1


__all__ = [
    "BatchDecoder",
    "BatchOutcome",
    "BatchRow",
    "Draw",
    "RowEngine",
    "RowStart",
    "fed_length",
    "supports_batching",
]
