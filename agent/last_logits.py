"""Logits of the last position only: the vocabulary projection for one row, not all.

An mlx-lm model's `__call__` projects every position onto the vocabulary, and callers
keep the last row. For the final piece of a prompt (up to `prefill_step_size` tokens)
and for a grammar-forced run of several tokens that is one projection per token where
one is needed: on `tiny-large-vocab` (100k vocabulary, hidden size 128) a 373-token
prompt took 5.7 s with every row projected and 0.4 s for the layers alone, and a
5-token forced run 57 ms against ~15 ms. For LFM2-8B-A1B the projection is about a
tenth of a token's work.

Only architectures whose `__call__` is "layers, then the projection" (read in their
mlx-lm source) take the short way; any other model keeps its own `__call__`, so logit
scaling or soft-capping that some architectures add is never skipped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import mlx.core as mx

# model_type -> whether the projection is always the tied embedding (else the
# `tie_word_embeddings` argument decides between it and `lm_head`).
_LAYERS_THEN_PROJECTION: dict[str, bool] = {
    "lfm2": True,
    "lfm2_moe": True,
    "llama": False,
    "qwen2": False,
    "qwen3": False,
}

LastLogits = Callable[[mx.array, Any], mx.array]
# (inputs (B, T), cache, positions (B,), or None for the last of every row) -> (B, V)
LogitsAt = Callable[[mx.array, Any, "mx.array | None"], mx.array]


Hidden = Callable[[mx.array, Any], mx.array]
Project = Callable[[mx.array], mx.array]


def _projection(module: Any) -> tuple[Any, Project] | None:
    """The model's layers and its vocabulary projection, for the architectures known
    to be "layers, then the projection"; None for any other."""
    always_tied = _LAYERS_THEN_PROJECTION.get(str(getattr(module, "model_type", "")))
    layers: Any = getattr(module, "model", None)
    if always_tied is None or layers is None:
        return None
    tied = always_tied or getattr(getattr(module, "args", None), "tie_word_embeddings", None)
    if tied:
        return layers, layers.embed_tokens.as_linear
    head = getattr(module, "lm_head", None) if tied is not None else None
    return (layers, head) if head is not None else None


def split_fn(module: Any) -> tuple[Hidden, Project]:
    """(inputs (1, T), cache) -> rows (1, T, D), and rows -> logits: the rows are hidden
    states and the projection is applied only to the rows a caller needs (a draft is
    checked a row at a time); for any other architecture the rows are already logits."""
    split = _projection(module)
    if split is None:
        return (lambda inputs, cache: module(inputs, cache=cache)), (lambda rows: rows)
    layers, project = split
    return (lambda inputs, cache: layers(inputs, cache)), project


def logits_at_fn(module: Any) -> LogitsAt:
    """A function giving each row's logits at one position (a batch whose rows end at
    different positions), projecting only those rows of hidden state."""
    split = _projection(module)

    def pick(out: mx.array, positions: mx.array | None) -> mx.array:
        if positions is None:
            return out[:, -1, :]
        return out[mx.arange(out.shape[0]), positions]

    if split is None:
        return lambda inputs, cache, positions: pick(module(inputs, cache=cache), positions)
    layers, project = split

    def at(inputs: mx.array, cache: Any, positions: mx.array | None) -> mx.array:
        return project(pick(layers(inputs, cache), positions))

    return at


def last_logits_fn(module: Any) -> LastLogits:
    """A function (inputs (1, T), cache) -> logits (1, V) of the last position."""
    at = logits_at_fn(module)
    return lambda inputs, cache: at(inputs, cache, None)
