"""The numpy sampler of the llama.cpp runtime: the same settings mean what they mean in
mlx-lm's sampler, masked tokens are never drawn, and draws follow the distribution."""

from __future__ import annotations

import numpy as np
import pytest

from agent.np_sampling import MASKED, NumpySampler, apply_bias
from agent.sampling import SamplingParams


def sampler(**kwargs) -> NumpySampler:
    base = {"temperature": 1.0, "top_p": 1.0, "min_p": 0.0, "top_k": 0, "seed": 0}
    return NumpySampler(SamplingParams(**(base | kwargs)))


LOGITS = np.log(np.array([0.5, 0.25, 0.125, 0.125], dtype=np.float32))


def draws(s: NumpySampler, logits: np.ndarray, n: int = 4000) -> np.ndarray:
    return np.bincount([s.sample(logits) for _ in range(n)], minlength=logits.shape[0]) / n


def test_greedy_is_the_argmax():
    assert sampler(temperature=0.0).sample(np.array([0.1, 3.0, 2.0], np.float32)) == 1


def test_draws_follow_the_softmax():
    freq = draws(sampler(), LOGITS)
    assert np.allclose(freq, [0.5, 0.25, 0.125, 0.125], atol=0.03)


def test_temperature_sharpens():
    freq = draws(sampler(temperature=0.5), LOGITS)  # p^2, renormalised
    expected = np.array([0.25, 0.0625, 0.015625, 0.015625]) / 0.34375
    assert np.allclose(freq, expected, atol=0.03)


def test_masked_tokens_are_never_drawn():
    logits = np.zeros(50_000, np.float32)
    words = np.zeros((50_000 + 31) // 32, np.uint32)
    allowed = [7, 49_999]
    for t in allowed:
        words[t // 32] |= np.uint32(1 << (t % 32))
    biased = apply_bias(logits, words)
    assert biased[0] == np.float32(MASKED)
    s = sampler(temperature=2.0)
    assert {s.sample(biased) for _ in range(300)} == set(allowed)


@pytest.mark.parametrize(
    ("kwargs", "allowed"),
    [({"top_k": 2}, {0, 1}), ({"min_p": 0.4}, {0, 1}), ({"top_p": 0.7}, {0, 1})],
)
def test_filters_keep_only_the_head(kwargs, allowed):
    s = sampler(**kwargs)
    seen = {s.sample(LOGITS) for _ in range(500)}
    assert seen == allowed


def test_a_seed_repeats_its_draws():
    logits = np.random.default_rng(1).standard_normal(1000).astype(np.float32)
    assert [sampler(seed=5).sample(logits) for _ in range(3)] == [
        sampler(seed=5).sample(logits) for _ in range(3)
    ]
    one, other = sampler(seed=5), sampler(seed=5)
    assert [one.sample(logits) for _ in range(20)] == [other.sample(logits) for _ in range(20)]


def test_draws_across_blocks_hit_only_tokens_with_mass():
    """Mass in three blocks of a vocabulary that is not a multiple of the block size."""
    logits = np.full(600, MASKED, np.float32)
    logits[[5, 300, 599]] = np.log(np.array([1.0, 2.0, 1.0], np.float32))
    freq = draws(sampler(), logits)
    assert set(np.flatnonzero(freq)) == {5, 300, 599}
    assert np.allclose(freq[[5, 300, 599]], [0.25, 0.5, 0.25], atol=0.03)
