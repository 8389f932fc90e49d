"""Sampling from numpy logits, for runtimes whose logits are not MLX arrays (llama.cpp).

The same settings as `SamplingParams` mean the same thing as in mlx-lm's sampler:
a repetition penalty over the recent tokens, then `top_k`, `min_p` and `top_p` filters,
then a draw at `temperature` (greedy at 0). Masked tokens arrive with a large negative
bias and keep no probability.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from agent.sampling import SamplingParams

MASKED = -1e30


class NumpySampler:
    """Draws tokens for one generation (its random state is seeded per generation)."""

    def __init__(self, params: SamplingParams) -> None:
        self.params = params
        self.rng = np.random.default_rng(params.seed)

    def penalise(self, logits: np.ndarray, history: Sequence[int]) -> np.ndarray:
        """The repetition penalty over the last `repetition_context_size` tokens."""
        p = self.params
        if p.repetition_penalty == 1.0 or not history:
            return logits
        ids = np.unique(np.asarray(history[-p.repetition_context_size :], dtype=np.int64))
        ids = ids[ids < logits.shape[0]]
        seen = logits[ids]
        logits = logits.copy()
        logits[ids] = np.where(seen > 0, seen / p.repetition_penalty, seen * p.repetition_penalty)
        return logits

    def sample(self, logits: np.ndarray) -> int:
        """One token from `logits` (float32, one row)."""
        p = self.params
        if p.temperature == 0:
            return int(np.argmax(logits))
        scaled = logits.astype(np.float64) / p.temperature
        candidates = np.arange(scaled.shape[0])
        if p.top_k and p.top_k < scaled.shape[0]:
            keep = np.argpartition(scaled, -p.top_k)[-p.top_k :]
            candidates, scaled = keep, scaled[keep]
        live = scaled > MASKED / 2
        candidates, scaled = candidates[live], scaled[live]
        probs = np.exp(scaled - scaled.max())
        probs /= probs.sum()
        if p.min_p > 0:
            keep = probs >= p.min_p * probs.max()
            candidates, probs = candidates[keep], probs[keep]
            probs /= probs.sum()
        if p.top_p < 1:
            order = np.argsort(-probs)
            cumulative = np.cumsum(probs[order])
            cut = int(np.searchsorted(cumulative, p.top_p)) + 1
            chosen = order[:cut]
            candidates, probs = candidates[chosen], probs[chosen]
            probs /= probs.sum()
        return int(candidates[self.rng.choice(candidates.shape[0], p=probs)])

    def without(self, logits: np.ndarray, token: int) -> np.ndarray:
        """`logits` with `token` masked (a refused sample)."""
        logits = logits.copy()
        logits[token] = MASKED
        return logits


def apply_bias(logits: np.ndarray, words: np.ndarray) -> np.ndarray:
    """`logits` with every token whose bit is clear in the packed mask set to MASKED."""
    bits = np.unpackbits(words.view(np.uint8), bitorder="little")[: logits.shape[0]]
    if bits.shape[0] < logits.shape[0]:
        bits = np.concatenate([bits, np.zeros(logits.shape[0] - bits.shape[0], np.uint8)])
    return np.where(bits.astype(bool), logits, np.float32(MASKED)).astype(np.float32)
