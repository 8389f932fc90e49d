"""A check both engines' prompt caches must pass, on a model whose cache can be cut."""

from __future__ import annotations

from typing import Any

from agent.sampling import SamplingParams

GREEDY = SamplingParams.greedy()


def check_cache_is_trimmed_to_the_shared_prefix(model: Any) -> None:
    """A prompt that parts ways with the cached one after `keep` tokens reuses exactly
    those (the cache, prompt and answer, is cut back), and generates what a cold start
    generates: a cache trimmed one token too short or too long would not."""
    model.reset_cache()
    base = model.encode("The quick brown fox jumps over the lazy dog and runs far away")
    first = model.generate(base, max_tokens=6, sampling=GREEDY)
    keep = len(base) // 2
    other = model.encode(" while the cat sleeps on the warm mat")
    assert other[0] != base[keep]  # the prompts part ways right after `keep` tokens
    diverged = base[:keep] + other
    trimmed = model.generate(diverged, max_tokens=8, sampling=GREEDY)
    assert first.stats.cached_prompt_tokens == 0
    assert trimmed.stats.cached_prompt_tokens == keep
    assert trimmed.stats.prefilled_tokens == len(diverged) - keep
    model.reset_cache()
    cold = model.generate(diverged, max_tokens=8, sampling=GREEDY)
    assert cold.stats.cached_prompt_tokens == 0
    assert cold.token_ids == trimmed.token_ids
