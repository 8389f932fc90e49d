"""MLX's half of a batch (`agent.batch_runtime.RowEngine`): rows side by side in
mlx-lm's batch caches.

What is taken from mlx-lm is its batch caches (`BatchKVCache`, `ArraysCache` with
per-row lengths for LFM2's convolution state): rows join by merging their
single-sequence cache in (left-padded), leave by filtering it, and rows feeding
different numbers of tokens in one pass are right-padded, the padding rolled to the
left afterwards, as mlx-lm's prompt batching does.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, cast

import mlx.core as mx

from agent.batch_runtime import BatchRow, Draw, RowStart, fed_length
from agent.last_logits import logits_at_fn
from agent.runtime import Model, apply_logit_bias, resample
from agent.sampling import SamplingParams
from agent.token_runtime import Prompt

PAD_TOKEN = 0  # fed in the padding of a shorter row: masked, so never seen


def mlx_can_batch(model: Any) -> bool:
    """Whether every cache layer of the MLX `model` has a batch form."""
    if not isinstance(model, Model):
        return False
    from mlx_lm.models.cache import make_prompt_cache

    return all(hasattr(type(c), "merge") for c in make_prompt_cache(model.module))


class MlxRows:
    """The rows' caches (one batch cache per layer) and their sampling."""

    def __init__(self, model: Model, sampling: SamplingParams) -> None:
        self.model = model
        self.sampling = sampling
        self._sampler = sampling.sampler()
        self._processors = sampling.logits_processors()
        self._cache: list[Any] | None = None  # one row per joined row
        self._width = 0
        self._logits_at = logits_at_fn(model.module)
        if sampling.seed is not None:
            mx.random.seed(sampling.seed)

    def prefill(self, prompt: Prompt, max_tokens: int) -> RowStart:
        prefill = self.model.prefill(prompt)
        self._width = prefill.logits.shape[-1]
        return RowStart(prefill.tokens, prefill.cached, prefill.logits, prefill.seconds,
                        prefill.cache)  # fmt: skip

    def join(self, start: RowStart) -> None:
        merged = [type(c).merge([c]) for c in start.state]  # copies: the Model keeps its own
        mx.eval([c.state for c in merged])
        if self._cache is None:
            self._cache = merged
        else:
            for mine, theirs in zip(self._cache, merged, strict=True):
                mine.extend(theirs)

    def sample(self, rows: Sequence[BatchRow]) -> list[Draw]:
        """Mask, sample and offer a resample per row (the single path's order)."""
        biases = []
        for row in rows:
            t0 = time.perf_counter()
            biases.append(row.constraint.logit_bias(row.budget, self._width))
            row.run.constraint_s += time.perf_counter() - t0
        logits = mx.concatenate([row.logits for row in rows])
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
        draws = []
        for index, row in enumerate(rows):

            def redraw(token: int, budget: int, index: int = index, row: BatchRow = row) -> int:
                return resample(logprobs[index : index + 1], token, self._sampler,
                                row.constraint, budget)  # fmt: skip

            draws.append(Draw(sampled[index], redraw))
        return draws

    def forward(self, pending: list[list[int]]) -> list[tuple[int, Any]]:
        """Feed the rows' pending tokens in one pass.

        Rows feeding different numbers of tokens are right-padded, and padding costs
        as much as real tokens on a CPU. So a pass is only as long as keeps at least
        half of its positions real (`fed_length`); a row with a longer forced run
        feeds the rest in the next passes, without sampling in between.
        """
        assert self._cache is not None
        length = fed_length([len(tokens) for tokens in pending])
        fed = [tokens[:length] for tokens in pending]
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
        return [(n, logits[index : index + 1]) for index, n in enumerate(lengths)]

    def keep(self, indices: list[int]) -> None:
        if not indices:
            self._cache = None
        elif self._cache is not None:
            for cache in self._cache:
                cache.filter(indices)

    def close(self) -> None:
        self._cache = None


__all__ = ["PAD_TOKEN", "MlxRows", "mlx_can_batch"]
