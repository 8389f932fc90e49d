"""A BERT encoder in mlx.nn, enough for sentence-embedding models like all-MiniLM-L6-v2.

Written here rather than borrowed so that embeddings need neither torch nor a model
hub: the weights are the Hugging Face `BertModel` safetensors, loaded by parameter
name. Inference only (no dropout); the pooler head is not used by sentence models
and is dropped on load.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import mlx.core as mx
import mlx.nn as nn


@dataclass(frozen=True)
class BertConfig:
    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    max_position_embeddings: int
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12

    @classmethod
    def from_dict(cls, config: dict) -> BertConfig:
        if config.get("hidden_act", "gelu") != "gelu":
            raise ValueError(f"unsupported activation {config['hidden_act']!r} (only gelu)")
        if config.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError("only absolute position embeddings are supported")
        return cls(
            vocab_size=config["vocab_size"],
            hidden_size=config["hidden_size"],
            num_hidden_layers=config["num_hidden_layers"],
            num_attention_heads=config["num_attention_heads"],
            intermediate_size=config["intermediate_size"],
            max_position_embeddings=config["max_position_embeddings"],
            type_vocab_size=config.get("type_vocab_size", 2),
            layer_norm_eps=config.get("layer_norm_eps", 1e-12),
        )


class _Embeddings(nn.Module):
    def __init__(self, c: BertConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(c.vocab_size, c.hidden_size)
        self.position_embeddings = nn.Embedding(c.max_position_embeddings, c.hidden_size)
        self.token_type_embeddings = nn.Embedding(c.type_vocab_size, c.hidden_size)
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)

    def __call__(self, input_ids: mx.array, token_type_ids: mx.array) -> mx.array:
        positions = mx.arange(input_ids.shape[1])[None, :]
        x = (
            self.word_embeddings(input_ids)
            + self.position_embeddings(positions)
            + self.token_type_embeddings(token_type_ids)
        )
        return self.LayerNorm(x)


class _SelfAttention(nn.Module):
    def __init__(self, c: BertConfig):
        super().__init__()
        self.heads = c.num_attention_heads
        self.query = nn.Linear(c.hidden_size, c.hidden_size)
        self.key = nn.Linear(c.hidden_size, c.hidden_size)
        self.value = nn.Linear(c.hidden_size, c.hidden_size)

    def __call__(self, x: mx.array, mask: mx.array) -> mx.array:
        b, t, d = x.shape
        h = self.heads

        def split(y: mx.array) -> mx.array:
            return y.reshape(b, t, h, d // h).transpose(0, 2, 1, 3)

        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        out = mx.fast.scaled_dot_product_attention(q, k, v, scale=1 / math.sqrt(d // h), mask=mask)
        return out.transpose(0, 2, 1, 3).reshape(b, t, d)


class _DenseNorm(nn.Module):
    """BERT's `output` blocks: projection, residual add, LayerNorm."""

    def __init__(self, d_in: int, d_out: int, eps: float):
        super().__init__()
        self.dense = nn.Linear(d_in, d_out)
        self.LayerNorm = nn.LayerNorm(d_out, eps=eps)

    def __call__(self, x: mx.array, residual: mx.array) -> mx.array:
        return self.LayerNorm(self.dense(x) + residual)


class _Attention(nn.Module):
    def __init__(self, c: BertConfig):
        super().__init__()
        self.self = _SelfAttention(c)  # HF's parameter name is `attention.self`
        self.output = _DenseNorm(c.hidden_size, c.hidden_size, c.layer_norm_eps)

    def __call__(self, x: mx.array, mask: mx.array) -> mx.array:
        return self.output(self.self(x, mask), x)


class _Intermediate(nn.Module):
    def __init__(self, c: BertConfig):
        super().__init__()
        self.dense = nn.Linear(c.hidden_size, c.intermediate_size)

    def __call__(self, x: mx.array) -> mx.array:
        return nn.gelu(self.dense(x))  # BERT's gelu is the exact (erf) one


class _Layer(nn.Module):
    def __init__(self, c: BertConfig):
        super().__init__()
        self.attention = _Attention(c)
        self.intermediate = _Intermediate(c)
        self.output = _DenseNorm(c.intermediate_size, c.hidden_size, c.layer_norm_eps)

    def __call__(self, x: mx.array, mask: mx.array) -> mx.array:
        x = self.attention(x, mask)
        return self.output(self.intermediate(x), x)


class _Encoder(nn.Module):
    def __init__(self, c: BertConfig):
        super().__init__()
        self.layer = [_Layer(c) for _ in range(c.num_hidden_layers)]


class BertModel(nn.Module):
    """Token states of a BERT encoder (no pooler)."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        self.embeddings = _Embeddings(config)
        self.encoder = _Encoder(config)

    def __call__(self, input_ids: mx.array, attention_mask: mx.array) -> mx.array:
        """`input_ids`, `attention_mask`: (batch, seq) ints; returns (batch, seq, hidden)."""
        x = self.embeddings(input_ids, mx.zeros_like(input_ids))
        # Additive mask: padded keys get a large negative score in every head and query.
        bias = (1.0 - attention_mask[:, None, None, :].astype(x.dtype)) * -1e9
        for layer in self.encoder.layer:
            x = layer(x, bias)
        return x

    def load_safetensors(self, path: Path) -> None:
        """Load Hugging Face `BertModel` weights; extra tensors (pooler, ids) are ignored."""
        # A .safetensors file loads as a dict (mlx's stub has one return type for all formats).
        loaded = cast(dict[str, mx.array], mx.load(str(path)))
        prefix = "bert."
        weights = {k.removeprefix(prefix): v for k, v in loaded.items()}
        wanted = {
            k: v
            for k, v in weights.items()
            if not k.startswith("pooler.") and not k.endswith("position_ids")
        }
        self.load_weights(list(wanted.items()), strict=True)
        mx.eval(self.parameters())


def mean_pool(states: mx.array, attention_mask: mx.array) -> mx.array:
    """Average of the token states over real (unpadded) tokens."""
    mask = attention_mask[:, :, None].astype(states.dtype)
    return (states * mask).sum(axis=1) / mx.maximum(mask.sum(axis=1), 1e-9)


def l2_normalize(x: mx.array) -> mx.array:
    return x / mx.maximum(mx.linalg.norm(x, axis=-1, keepdims=True), 1e-12)
