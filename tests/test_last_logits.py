"""Logits of the last position only equal the last row of the model's own logits."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
from mlx_lm.models import llama
from mlx_lm.models.cache import make_prompt_cache

from agent.last_logits import last_logits_fn


def _both(module, tokens: list[int]) -> tuple[np.ndarray, np.ndarray]:
    inputs = mx.array(tokens)[None]
    full = module(inputs, cache=make_prompt_cache(module))[:, -1, :]
    last = last_logits_fn(module)(inputs, make_prompt_cache(module))
    mx.eval(full, last)
    return np.array(full.astype(mx.float32)), np.array(last.astype(mx.float32))


@pytest.mark.parametrize("length", [1, 7])
def test_the_shipped_lfm2_moe_model(tiny, length):
    full, last = _both(tiny.module, list(range(3, 3 + length)))
    assert full.shape == last.shape == (1, tiny.module.args.vocab_size)
    np.testing.assert_allclose(last, full, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("tied", [True, False])
def test_a_llama_model_with_and_without_tied_embeddings(tied):
    args = llama.ModelArgs(
        model_type="llama", hidden_size=32, num_hidden_layers=2, intermediate_size=64,
        num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-5, vocab_size=97,
        tie_word_embeddings=tied,
    )  # fmt: skip
    mx.random.seed(0)
    module = llama.Model(args)
    mx.eval(module.parameters())
    full, last = _both(module, [1, 5, 9, 2])
    np.testing.assert_allclose(last, full, rtol=1e-4, atol=1e-4)


def test_an_architecture_not_read_keeps_its_own_call():
    calls = []

    class Scaled:  # a model that scales its logits after the projection
        model_type = "unknown-arch"

        def __call__(self, inputs, cache=None):
            calls.append(inputs.shape)
            return mx.ones((1, inputs.shape[1], 5)) * 2.0

    out = last_logits_fn(Scaled())(mx.array([[1, 2, 3]]), None)
    assert calls == [(1, 3)]
    assert out.shape == (1, 5) and float(out[0, 0]) == 2.0


def test_each_row_at_its_own_position(tiny):
    from agent.last_logits import logits_at_fn

    module = tiny.module
    inputs = mx.array([[3, 4, 5, 6], [7, 8, 9, 10]])
    full = module(inputs, cache=make_prompt_cache(module))
    positions = mx.array([3, 1])
    got = logits_at_fn(module)(inputs, make_prompt_cache(module), positions)
    want = mx.stack([full[0, 3], full[1, 1]])
    np.testing.assert_allclose(np.array(got), np.array(want), rtol=1e-4, atol=1e-4)
