"""The logit bias of a packed mask: right values, also when it comes from the cache."""

from __future__ import annotations

import numpy as np

from agent.constrained import masks


def _expected(ids: list[int], width: int) -> np.ndarray:
    out = np.full(width, masks.MASKED, dtype=np.float32)
    out[ids] = 0.0
    return out


def test_bias_values_survive_reuse_and_mutation_of_the_mask() -> None:
    width = 1000
    a, b = [0, 5, 999], [1, 2, 3, 64]
    words_a = masks.pack(a, width)
    words_b = masks.pack(b, width)
    for _ in range(2):  # the second round is served from the cache
        np.testing.assert_array_equal(np.array(masks.bias(words_a, width)), _expected(a, width))
        np.testing.assert_array_equal(np.array(masks.bias(words_b, width)), _expected(b, width))
    # The same array object with other bits is another mask, not a cache hit.
    words_a[0] = 0
    np.testing.assert_array_equal(np.array(masks.bias(words_a, width)), _expected([999], width))


def test_bias_pads_a_vocabulary_wider_than_the_mask() -> None:
    words = masks.pack([3], 32)
    bias = np.array(masks.bias(words, 40))
    assert bias.shape == (40,)
    assert bias[3] == 0.0 and (np.delete(bias, 3) == masks.MASKED).all()


def test_many_distinct_masks_all_give_their_own_bias() -> None:
    width = 64
    for token in range(width):  # more masks than the cache holds
        bias = np.array(masks.bias(masks.pack([token], width), width))
        assert np.flatnonzero(bias == 0.0).tolist() == [token]
