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
        """One token from `logits` (float32, one row).

        Runs once per generated token, so it stays in float32 and draws by inverse CDF
        over blocks (`_draw`): `Generator.choice` with `p` over a 49k vocabulary cost
        ~1 ms a token, about the gap to llama.cpp's own C sampler.
        Masked tokens (MASKED) get exactly zero probability and are never drawn.
        """
        p = self.params
        if p.temperature == 0:
            return int(np.argmax(logits))
        scaled = np.asarray(logits, dtype=np.float32) / np.float32(p.temperature)
        candidates: np.ndarray | None = None  # None: every token, in vocabulary order
        if p.top_k and p.top_k < scaled.shape[0]:
            candidates = np.argpartition(scaled, -p.top_k)[-p.top_k :]
            scaled = scaled[candidates]
        probs = np.exp(scaled - scaled.max())
        if p.min_p > 0:
            probs = np.where(probs >= np.float32(p.min_p) * probs.max(), probs, np.float32(0))
        if p.top_p < 1:
            # Sort only the tokens that carry mass: below 1e-9 of the top one, a 65k
            # vocabulary holds under 1e-4 of the total, beyond any top_p cut.
            head = np.flatnonzero(probs > probs.max() * np.float32(1e-9))
            order = head[np.argsort(-probs[head])]
            cumulative = np.cumsum(probs[order], dtype=np.float64)
            cut = int(np.searchsorted(cumulative, p.top_p * probs.sum(dtype=np.float64))) + 1
            kept = np.zeros_like(probs)
            kept[order[:cut]] = probs[order[:cut]]
            probs = kept
        index = _draw(probs, self.rng.random())
        return int(candidates[index]) if candidates is not None else index

    def without(self, logits: np.ndarray, token: int) -> np.ndarray:
        """`logits` with `token` masked (a refused sample)."""
        logits = logits.copy()
        logits[token] = MASKED
        return logits


_BLOCK = 256


def _draw(probs: np.ndarray, u: float) -> int:
    """The index where `u` (in [0, 1)) falls in the cumulative distribution of the
    unnormalised `probs`, never one of zero mass.

    A cumulative sum over the whole vocabulary is the slow part of a draw (~0.4 ms at
    49k in float64); block sums, a cumulative sum over the blocks and one inside the
    chosen block cost a tenth of that.
    """
    n = probs.shape[0]
    pad = (-n) % _BLOCK
    padded = np.concatenate([probs, np.zeros(pad, probs.dtype)]) if pad else probs
    blocks = np.cumsum(padded.reshape(-1, _BLOCK).sum(axis=1, dtype=np.float64))
    x = u * blocks[-1]
    b = min(int(np.searchsorted(blocks, x, side="right")), blocks.shape[0] - 1)
    block = padded[b * _BLOCK : (b + 1) * _BLOCK]
    live = np.flatnonzero(block)
    if live.shape[0] == 0:  # only if rounding put x at the very end
        return int(np.argmax(probs))
    within = np.cumsum(block[live], dtype=np.float64)
    start = blocks[b - 1] if b else 0.0
    j = min(int(np.searchsorted(within, x - start, side="right")), live.shape[0] - 1)
    return b * _BLOCK + int(live[j])


def apply_bias(logits: np.ndarray, words: np.ndarray) -> np.ndarray:
    """`logits` with every token whose bit is clear in the packed mask set to MASKED."""
    bits = np.unpackbits(words.view(np.uint8), bitorder="little")[: logits.shape[0]]
    if bits.shape[0] < logits.shape[0]:
        bits = np.concatenate([bits, np.zeros(logits.shape[0] - bits.shape[0], np.uint8)])
    return np.where(bits.astype(bool), logits, np.float32(MASKED)).astype(np.float32)
