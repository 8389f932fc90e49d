"""Several constrained generations of one MLX model, decoding side by side.

One forward pass per step serves every row of the batch: on a CPU a small model's step
costs about the same for a few rows as for one (the weights are read once), so
documents extracted together finish sooner than one after another.

Why our own loop rather than mlx-lm's `BatchGenerator`: its logits processors can
mask, but cannot refuse a sampled token and draw again, and cannot feed a run of
grammar-forced tokens; the budget guarantee rests on the first (`DecodeConstraint.check`)
and the speed of JSON decoding on the second. What is taken from mlx-lm is its batch
caches (`BatchKVCache`, `ArraysCache` with per-row lengths for LFM2's convolution state):
rows join by merging their single-sequence cache in (left-padded), leave by filtering
it, and rows feeding different numbers of tokens in one pass are right-padded, the
padding rolled to the left afterwards, as mlx-lm's prompt batching does.

Every row keeps the single path's guarantees: the same constraint calls in the same
order (forced runs, mask, check, resample, fallback) under the same budget, so its
output is valid and within `max_tokens` whatever its neighbours do. A row whose
constraint fails is dropped alone; the others go on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import mlx.core as mx

from agent.last_logits import logits_at_fn
from agent.runtime import Model, apply_logit_bias, resample
from agent.sampling import SamplingParams
from agent.stats import GenerationStats
from agent.token_runtime import DecodeConstraint, GenerationResult, Prompt, _Decode

PAD_TOKEN = 0  # fed in the padding of a shorter row: masked, so never seen


@dataclass
class BatchOutcome:
    """A finished row: its result, or the error that stopped it."""

    key: Any
    result: GenerationResult | None = None
    error: Exception | None = None


@dataclass
class _Row:
    key: Any
    tokens: list[int]  # the prompt
    constraint: DecodeConstraint
    max_tokens: int
    stats: GenerationStats
    started: float
    run: _Decode = field(default_factory=lambda: _Decode(finish="length"))
    generated: list[int] = field(default_factory=list)
    pending: list[int] = field(default_factory=list)  # taken, not yet fed to the model
    logits: mx.array | None = None  # (1, V) after everything fed; None while pending
    done: bool = False


def supports_batching(model: Any) -> bool:
    """Whether `model` can decode rows side by side: an MLX model whose every cache
    layer has a batch form (pure attention and LFM2's convolution state do)."""
    if not isinstance(model, Model):
        return False
    from mlx_lm.models.cache import make_prompt_cache

    return all(hasattr(type(c), "merge") for c in make_prompt_cache(model.module))


class BatchDecoder:
    """Rows added one by one (each prefilled through the Model's prompt cache), decoded
    together one step at a time; finished rows come out of `step` as they end."""

    def __init__(self, model: Model, sampling: SamplingParams | None = None) -> None:
        self.model = model
        self.sampling = sampling or model.default_sampling
        self._sampler = self.sampling.sampler()
        self._processors = self.sampling.logits_processors()
        self._rows: list[_Row] = []
        self._cache: list[Any] | None = None  # the batch caches, one row per `_rows` entry
        self._finished: list[BatchOutcome] = []
        self._eos = model.eos_token_ids
        self._width = 0
        self._logits_at = logits_at_fn(model.module)
        if self.sampling.seed is not None:
            mx.random.seed(self.sampling.seed)

    @property
    def active(self) -> int:
        """Rows decoding now."""
        return len(self._rows)

    def add(self, key: Any, prompt: Prompt, constraint: DecodeConstraint, max_tokens: int) -> None:
        """Prefill `prompt` and add its row; it (or the error that stopped it before it
        started: a prompt too long) comes out of a later `step` under `key`."""
        started = time.perf_counter()
        try:
            prefill = self.model.prefill(prompt)
        except Exception as exc:
            self._finished.append(BatchOutcome(key, error=exc))
            return
        stats = GenerationStats(
            prompt_tokens=len(prefill.tokens),
            cached_prompt_tokens=prefill.cached,
            constrained=True,
            engine=self.model.engine,
            ttft_s=prefill.seconds,
        )
        row = _Row(key, prefill.tokens, constraint, max_tokens, stats, started)
        row.logits = prefill.logits
        self._width = prefill.logits.shape[-1]
        self._guarded(row, self._take_forced)
        if row.done:
            return
        merged = [type(c).merge([c]) for c in prefill.cache]  # copies: the Model keeps its own
        mx.eval([c.state for c in merged])
        if self._cache is None:
            self._cache = merged
        else:
            for mine, theirs in zip(self._cache, merged, strict=True):
                mine.extend(theirs)
        self._rows.append(row)

    def step(self) -> list[BatchOutcome]:
        """One token for every row that has logits, the forced runs that follow, and one
        forward pass for all; returns the rows that finished (in no particular order)."""
        ready = [row for row in self._rows if row.logits is not None]
        if ready:
            self._sample(ready)
        self._drop_finished()
        if self._rows:
            self._forward()
        finished, self._finished = self._finished, []
        return finished

    # ------------------------------------------------------------------ steps
    def _sample(self, rows: list[_Row]) -> None:
        """Mask, sample, check and take one token per row (the single path's order)."""
        biases = []
        for row in rows:
            t0 = time.perf_counter()
            budget = row.max_tokens - len(row.generated)
            biases.append(row.constraint.logit_bias(budget, self._width))
            row.run.constraint_s += time.perf_counter() - t0
        logits = mx.concatenate([row.logits for row in rows if row.logits is not None])
        if self._processors:
            context = self.sampling.repetition_context_size
            processed = []
            for index, row in enumerate(rows):
                history = mx.array((row.tokens + row.generated)[-context:])
                one = logits[index : index + 1]
                for processor in self._processors:
                    one = processor(history, one)
                processed.append(one)
            logits = mx.concatenate(processed)
        logits = apply_logit_bias(logits, mx.stack(biases))
        logprobs = logits - mx.logsumexp(logits, axis=-1, keepdims=True)
        sampled = cast(list[int], self._sampler(logprobs).tolist())
        for index, row in enumerate(rows):
            row.logits = None

            def take(row: _Row, index: int = index) -> None:
                self._take_sampled(row, sampled[index], logprobs[index : index + 1])

            self._guarded(row, take)

    def _take_sampled(self, row: _Row, token: int, logprobs: mx.array) -> None:
        constraint, run = row.constraint, row.run
        budget = row.max_tokens - len(row.generated)
        t0 = time.perf_counter()
        if not constraint.check(token, budget):
            token = resample(logprobs, token, self._sampler, constraint, budget)
        constraint.advance(token)
        run.constraint_s += time.perf_counter() - t0
        self._first_token(row)
        row.generated.append(token)
        row.pending.append(token)
        if run.ends_after(token, self._eos, constraint, len(row.generated), row.max_tokens):
            self._finish(row)
            return
        self._take_forced(row)

    def _take_forced(self, row: _Row) -> None:
        """Take the tokens the grammar forces now (fed with the row's next pass)."""
        constraint, run = row.constraint, row.run
        while True:
            budget = row.max_tokens - len(row.generated)
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
        """Feed the rows' pending tokens in one pass and keep each row's logits after
        its last token.

        Rows feeding different numbers of tokens are right-padded, and padding costs
        as much as real tokens on a CPU. So a pass is only as long as keeps at least
        half of its positions real (`fed_length`); a row with a longer forced run
        feeds the rest in the next passes, without sampling in between.
        """
        assert self._cache is not None
        rows = self._rows
        length = fed_length([len(row.pending) for row in rows])
        fed = [row.pending[:length] for row in rows]
        lengths = [len(tokens) for tokens in fed]
        inputs = mx.array([tokens + [PAD_TOKEN] * (length - len(tokens)) for tokens in fed])
        padded = min(lengths) < length
        if padded:
            padding = [length - n for n in lengths]
            for cache in self._cache:
                cache.prepare(lengths=lengths, right_padding=padding)
        positions = mx.array(lengths) - 1 if padded else None
        logits = self._logits_at(inputs, self._cache, positions)
        if padded:
            for cache in self._cache:
                cache.finalize()
        logits = logits.astype(mx.float32)
        mx.async_eval(logits)  # the next masks are computed while this runs
        for index, row in enumerate(rows):
            row.pending = row.pending[lengths[index] :]
            # Logits count only after the row's whole run is in.
            row.logits = None if row.pending else logits[index : index + 1]
            row.run.forward_passes += 1

    def _drop_finished(self) -> None:
        keep = [index for index, row in enumerate(self._rows) if not row.done]
        if len(keep) == len(self._rows):
            return
        self._rows = [self._rows[index] for index in keep]
        if not keep:
            self._cache = None
        elif self._cache is not None:
            for cache in self._cache:
                cache.filter(keep)

    # ------------------------------------------------------------------ rows
    def _guarded(self, row: _Row, work: Callable[[_Row], None]) -> None:
        """Run `work` on one row; an exception ends that row alone."""
        try:
            work(row)
        except Exception as exc:
            row.done = True
            self._finished.append(BatchOutcome(row.key, error=exc))

    def _first_token(self, row: _Row) -> None:
        if not row.run.t_first:
            row.run.t_first = time.perf_counter()

    def _finish(self, row: _Row) -> None:
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
    real tokens rather than padding."""
    rows = len(pending)
    for length in sorted(set(pending), reverse=True):
        if sum(min(n, length) for n in pending) * 2 >= rows * length:
            return length
    return 1


__all__ = ["BatchDecoder", "BatchOutcome", "fed_length", "supports_batching"]
