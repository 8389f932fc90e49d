"""Memory plan of a GGUF model on llama.cpp: weights, KV cache, compute buffer.

Weights are the GGUF file itself (llama.cpp maps it and reads every tensor), or, for a
quant of LFM2-8B-A1B not downloaded yet, its parameter count (from the published
config) at the quant's bits per weight. llama.cpp keeps the KV cache in float16 for the
attention layers only (LFM2's short-conv layers hold a few vectors of state), and its
compute buffer holds one batch's activations and logits in float32.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agent.errors import UserError
from agent.llamacpp.models import GgufSource, cached_gguf, gguf_source, resolve_gguf
from agent.memory_plan import MemoryPlan

# Average bits per weight of llama.cpp's quant types (their own published figures).
BITS_PER_WEIGHT = {
    "F32": 32.0, "F16": 16.0, "BF16": 16.0, "Q8_0": 8.5, "Q6_K": 6.56, "Q5_K_M": 5.69,
    "Q5_K_S": 5.54, "Q5_0": 5.5, "Q5_1": 6.0, "Q4_K_M": 4.85, "Q4_K_S": 4.58, "Q4_0": 4.5,
    "Q4_1": 5.0, "Q3_K_L": 4.27, "Q3_K_M": 3.91, "Q3_K_S": 3.5, "Q2_K": 2.96,
}  # fmt: skip
BATCH = 512  # llama.cpp's default batch: the compute buffer holds one


def plan_gguf(spec: str, context: int) -> MemoryPlan:
    """The plan of `spec` (see `agent.llamacpp.models.gguf_source`) at `context` tokens."""
    if context < 1:
        raise UserError(f"context must be at least 1 token, got {context}")
    source = gguf_source(spec)
    if source is None:
        raise UserError(f"'{spec}' has no GGUF: plan it with --engine mlx")
    if source.kind == "hub":
        cached = cached_gguf(source.repo, f"*{source.quant}*.gguf".lower())
        if cached is None:  # not downloaded: from the published config, no network
            return _from_reference(spec, source, context)
        return _from_file(spec, cached, context)
    return _from_file(spec, resolve_gguf(spec), context)


def _from_reference(spec: str, source: GgufSource, context: int) -> MemoryPlan:
    from agent.memory_plan import reference_config

    bits = BITS_PER_WEIGHT.get(source.quant.upper())
    if bits is None:
        known = ", ".join(sorted(BITS_PER_WEIGHT))
        raise UserError(f"unknown quant '{source.quant}'; known: {known}")
    config = reference_config()
    params = _parameter_count(config)
    layers = _lfm2_layers(config)
    return _plan(
        f"{source.repo}:{source.quant} (published config)",
        context,
        weights=int(params * bits / 8),
        quant=f"GGUF {source.quant} (~{bits:g} bits/weight, estimated)",
        attention_layers=layers["attention"],
        conv_layers=layers["conv"],
        kv_heads=config["num_key_value_heads"],
        head_dim=config["hidden_size"] // config["num_attention_heads"],
        hidden=config["hidden_size"],
        vocab=config["vocab_size"],
        heads=config["num_attention_heads"],
        conv_cache=config.get("conv_L_cache", 3),
    )


def _from_file(spec: str, path: Path, context: int) -> MemoryPlan:
    meta = _metadata(path)
    arch = meta.get("general.architecture", "llama")

    def number(key: str, default: int = 0) -> int:
        value = meta.get(f"{arch}.{key}")
        if value is None:
            return default
        text = str(value).strip("[]").split(",")[0]
        return int(float(text)) if text else default

    blocks = number("block_count")
    heads = number("attention.head_count", 1)
    hidden = number("embedding_length")
    kv_raw = meta.get(f"{arch}.attention.head_count_kv", "")
    kv_per_layer = [int(x) for x in str(kv_raw).strip("[]").split(",") if x.strip()]
    if len(kv_per_layer) == blocks:  # hybrid models: 0 heads in a conv layer
        attention = sum(1 for k in kv_per_layer if k > 0)
        kv_heads = max(kv_per_layer)
    else:
        attention = blocks
        kv_heads = kv_per_layer[0] if kv_per_layer else heads
    trained = number("context_length")
    if trained and context > trained:
        raise UserError(f"context {context} exceeds the model's maximum of {trained} tokens")
    file_type = meta.get("general.file_type", "")
    return _plan(
        spec,
        context,
        weights=path.stat().st_size,
        quant=f"GGUF file type {file_type}" if file_type else "GGUF",
        attention_layers=attention,
        conv_layers=blocks - attention,
        kv_heads=kv_heads,
        head_dim=hidden // max(heads, 1),
        hidden=hidden,
        vocab=int(meta.get(f"{arch}.vocab_size") or meta.get("_n_vocab") or 32_000),
        heads=heads,
        conv_cache=number("shortconv.l_cache", 3),
    )


def _plan(
    name: str,
    context: int,
    *,
    weights: int,
    quant: str,
    attention_layers: int,
    conv_layers: int,
    kv_heads: int,
    head_dim: int,
    hidden: int,
    vocab: int,
    heads: int,
    conv_cache: int,
) -> MemoryPlan:
    padded = -(-context // 256) * 256  # llama.cpp pads the context to 256
    kv = attention_layers * 2 * kv_heads * head_dim * padded * 2  # float16
    conv = conv_layers * (conv_cache - 1) * hidden * 4
    batch = min(BATCH, context)
    compute = batch * vocab * 4 + heads * batch * padded * 4 + 8 * batch * hidden * 4
    return MemoryPlan(
        model=name,
        context=context,
        device="cpu (llama.cpp)",
        quantization=quant,
        weights_bytes=weights,
        kv_cache_bytes=kv,
        conv_state_bytes=conv,
        overhead_bytes=compute,
        attention_layers=attention_layers,
        conv_layers=conv_layers,
    )


def _metadata(path: Path) -> dict[str, Any]:
    """The GGUF's metadata, read through llama.cpp (vocabulary only: no weights)."""
    from llama_cpp import Llama

    from agent.llamacpp.runtime import quiet_llama_logs

    quiet_llama_logs()
    reader = Llama(str(path), vocab_only=True, verbose=False)
    try:
        meta: dict[str, Any] = dict(reader.metadata)
        meta["_n_vocab"] = reader.n_vocab()
        return meta
    finally:
        reader.close()


def _parameter_count(config: dict[str, Any]) -> int:
    """Parameters of an LFM2(-MoE) config, counted from its shapes."""
    hidden, layers = config["hidden_size"], config["num_hidden_layers"]
    vocab = config["vocab_size"]
    heads, kv_heads = config["num_attention_heads"], config["num_key_value_heads"]
    head_dim = hidden // heads
    kinds = _lfm2_layers(config)
    attention = kinds["attention"] * (2 * hidden * hidden + 2 * hidden * kv_heads * head_dim)
    conv = kinds["conv"] * (4 * hidden * hidden + hidden * config.get("conv_L_cache", 3))
    experts = config.get("num_experts", 0)
    dense_layers = config.get("num_dense_layers", layers if not experts else 0)
    dense = dense_layers * 3 * hidden * config.get("intermediate_size", 4 * hidden)
    moe = (layers - dense_layers) * (
        experts * 3 * hidden * config.get("moe_intermediate_size", 0) + experts * hidden
    )
    return vocab * hidden + attention + conv + dense + moe


def _lfm2_layers(config: dict[str, Any]) -> dict[str, int]:
    from agent.memory_plan import _layer_types

    types = _layer_types(config)
    return {"attention": types.count("attention"), "conv": types.count("conv")}
