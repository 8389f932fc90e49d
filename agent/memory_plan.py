"""Memory plan: will this model fit at this context length, and where does RAM go?

Everything is derived from the model's config.json: the architecture is instantiated
lazily with mlx-lm (no weights are read or allocated), quantized as the config says
(bits, group size, per-layer overrides), cast as the runtime casts it on this device,
and its parameter bytes summed. The cache and the transient working set of a prefill
chunk follow from the layer types and shapes.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, cast

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten

from agent.errors import ModelNotFoundError, UserError
from agent.loader import compute_dtype_for_device
from agent.runtime import Model

KV_STEP = 256  # mlx-lm's KVCache grows in steps of 256 tokens


@dataclass(frozen=True)
class MemoryPlan:
    model: str
    context: int
    device: str
    quantization: str
    weights_bytes: int
    kv_cache_bytes: int
    conv_state_bytes: int
    overhead_bytes: int
    attention_layers: int
    conv_layers: int

    @property
    def cache_bytes(self) -> int:
        return self.kv_cache_bytes + self.conv_state_bytes

    @property
    def peak_bytes(self) -> int:
        return self.weights_bytes + self.cache_bytes + self.overhead_bytes

    def rows(self) -> list[tuple[str, int, str]]:
        return [
            ("weights", self.weights_bytes, self.quantization),
            (
                "runtime overhead",
                self.overhead_bytes,
                "prefill working set: attention scores, logits, FFN activations",
            ),
            (
                "KV cache",
                self.kv_cache_bytes,
                f"{self.attention_layers} attention layers x {self.context} tokens",
            ),
            ("conv state", self.conv_state_bytes, f"{self.conv_layers} short-conv layers"),
            ("estimated peak", self.peak_bytes, ""),
        ]

    def table(self) -> str:
        lines = [
            f"Memory plan for {self.model} at {self.context} tokens of context ({self.device})"
        ]
        for name, size, note in self.rows():
            lines.append(f"  {name:<17}{_fmt(size):>11}  {note}".rstrip())
        return "\n".join(lines)


def _fmt(n: int) -> str:
    if n >= 2**30:
        return f"{n / 2**30:.2f} GiB"
    return f"{n / 2**20:.1f} MiB"


def reference_config(name: str = "lfm2-8b-a1b") -> dict[str, Any]:
    """A published config shipped with edge-agent (used when weights are not on disk)."""
    text = resources.files("agent.models").joinpath(f"data/{name}.json").read_text()
    return json.loads(text)


def _lazy_model(config: dict[str, Any]) -> nn.Module:
    """The architecture with lazily-initialised (never evaluated) parameters."""
    from mlx_lm.utils import _get_classes

    try:
        model_class, args_class = _get_classes(config)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    model = model_class(args_class.from_dict(config))
    quant = config.get("quantization") or config.get("quantization_config")
    if quant and "bits" in quant:
        group_size, bits = quant.get("group_size", 64), quant["bits"]
        overrides = {k: v for k, v in quant.items() if isinstance(v, (dict, bool))}
        model_predicate = getattr(model, "quant_predicate", None)

        def predicate(path: str, module: nn.Module) -> bool | dict:
            if path in overrides:
                return overrides[path]
            if not hasattr(module, "to_quantized") or module.weight.shape[-1] % group_size:
                return False
            if not overrides and model_predicate is not None:
                return model_predicate(path, module)
            return True

        nn.quantize(model, group_size, bits, class_predicate=predicate)
    dtype = compute_dtype_for_device()
    if dtype is not None:
        model.set_dtype(dtype)
    else:
        torch_dtype = {"bfloat16": mx.bfloat16, "float16": mx.float16, "float32": mx.float32}
        model.set_dtype(torch_dtype.get(str(config.get("torch_dtype")), mx.bfloat16))
    return model


def plan_memory(
    config: dict[str, Any], context: int, name: str = "model", prefill_step: int | None = None
) -> MemoryPlan:
    """Estimate the memory of running `config` with `context` tokens in the cache."""
    if context < 1:
        raise UserError(f"context must be at least 1 token, got {context}")
    limit = config.get("max_position_embeddings")
    if limit and context > limit:
        raise UserError(f"context {context} exceeds the model's maximum of {limit} tokens")
    model = _lazy_model(config)
    # tree_flatten returns a list of (key, array) pairs unless given a `destination` dict.
    params = cast(list[tuple[str, mx.array]], tree_flatten(model.parameters()))
    weights = sum(v.nbytes for _, v in params)

    on_cpu = mx.default_device().type == mx.DeviceType.cpu
    act = 4 if compute_dtype_for_device() == mx.float32 else 2
    hidden = config["hidden_size"]
    heads = config["num_attention_heads"]
    kv_heads = config.get("num_key_value_heads") or heads
    head_dim = config.get("head_dim") or hidden // heads
    layer_types = _layer_types(config)
    n_attn = sum(t == "attention" for t in layer_types)
    n_conv = sum(t == "conv" for t in layer_types)

    kv_tokens = math.ceil(context / KV_STEP) * KV_STEP
    kv = n_attn * 2 * kv_heads * head_dim * kv_tokens * act
    conv = n_conv * (config.get("conv_L_cache", 3) - 1) * hidden * act

    chunk = min(prefill_step or Model.prefill_step_size, context)
    vocab = config["vocab_size"]
    ffn = max(
        config.get("intermediate_size", 0),
        config.get("num_experts_per_tok", 1) * config.get("moe_intermediate_size", 0),
    )
    # Without a fused attention kernel (CPU) the chunk's scores and mask are materialised.
    scores = (heads * chunk * context * 4 + chunk * context) if on_cpu else 0
    overhead = (
        scores
        + chunk * vocab * act  # logits of the chunk
        + 3 * chunk * ffn * act  # gate, up and their product
        + 7 * chunk * hidden * act  # q/k/v or conv in_proj, residual stream
    )
    return MemoryPlan(
        model=name,
        context=context,
        device="cpu" if on_cpu else "gpu",
        quantization=_describe(config),
        weights_bytes=weights,
        kv_cache_bytes=kv,
        conv_state_bytes=conv,
        overhead_bytes=overhead,
        attention_layers=n_attn,
        conv_layers=n_conv,
    )


def _layer_types(config: dict[str, Any]) -> list[str]:
    n = config["num_hidden_layers"]
    if config.get("layer_types"):
        return ["attention" if "attention" in t else "conv" for t in config["layer_types"]]
    if config.get("full_attn_idxs") is not None:
        idx = set(config["full_attn_idxs"])
        return ["attention" if i in idx else "conv" for i in range(n)]
    return ["attention"] * n


def _describe(config: dict[str, Any]) -> str:
    quant = config.get("quantization") or {}
    if "bits" in quant:
        extra = sum(1 for v in quant.values() if isinstance(v, dict))
        note = f", {extra} layers overridden" if extra else ""
        return f"{quant['bits']}-bit, group size {quant.get('group_size', 64)}{note}"
    return str(config.get("torch_dtype", "float16"))


def config_for_spec(spec: str) -> tuple[dict[str, Any], str]:
    """The config.json for a model spec, without downloading weights."""
    from agent.models.registry import (
        BUILTIN_MODELS,
        DEFAULT_MODEL,
        is_repo_id,
        read_config,
        resolve_model_path,
    )

    if spec in BUILTIN_MODELS or Path(spec).expanduser().exists() or not is_repo_id(spec):
        # Builds a built-in if needed; raises the precise error for a bad spec.
        return read_config(resolve_model_path(spec)), spec
    try:
        from huggingface_hub import hf_hub_download

        cached = hf_hub_download(spec, "config.json", local_files_only=True)
        return json.loads(Path(cached).read_text()), spec
    except Exception:
        pass
    if spec == DEFAULT_MODEL:
        return reference_config(), f"{spec} (published config)"
    raise ModelNotFoundError(
        f"no config.json for '{spec}' on this machine; pull the model first or pass a "
        "local model directory"
    )
