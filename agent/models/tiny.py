"""Built-in random-weight models of the LFM2-MoE architecture.

`tiny` reproduces LFM2-8B-A1B's layout in miniature (short-conv and attention layers
interleaved as in the real model, dense layers first and MoE after, top-k routing with
expert bias, 3-bit quantization with 8-bit router gates) so every code path that serves
the real model runs in tests in seconds. With random weights it is also the worst case
for constrained decoding: if its output is valid, any model's is.

The model directory is written in the same format as a Hugging Face MLX conversion
(config.json, model.safetensors, tokenizer files) and loaded with `mlx_lm.load`.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import mlx.core as mx
from mlx.utils import tree_flatten, tree_map

from agent.models.tokenizer_build import cl100k_bpe, save_hf_tokenizer, train_small_bpe
from agent.progress import ProgressCallback, silent_progress

# Bump when the recipe changes so stale cached builds are rebuilt.
RECIPE_VERSION = 2
# LiquidAI's recommended sampling for LFM2, as its Hub repos ship it.
LFM2_GENERATION_CONFIG = {"temperature": 0.3, "min_p": 0.15, "repetition_penalty": 1.05}


@dataclass(frozen=True)
class TinyRecipe:
    """Everything that determines the bytes of a built-in tiny model."""

    name: str
    vocab: str  # "small-bpe" or "cl100k"
    small_vocab_size: int = 1024
    hidden_size: int = 128
    intermediate_size: int = 256
    moe_intermediate_size: int = 64
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    num_experts: int = 8
    num_experts_per_tok: int = 2
    num_dense_layers: int = 2
    # LFM2-8B-A1B puts attention at 2, 6, 10, 14, 18, 21 of 24 layers: one in four.
    layer_types: tuple[str, ...] = (
        "conv",
        "conv",
        "full_attention",
        "conv",
        "conv",
        "conv",
        "full_attention",
        "conv",
    )
    bits: int = 3
    group_size: int = 64
    embedding_std: float = 0.1
    seed: int = 0
    max_position_embeddings: int = 32768


TINY = TinyRecipe(name="tiny", vocab="small-bpe")
TINY_LARGE_VOCAB = TinyRecipe(name="tiny-large-vocab", vocab="cl100k")


def _model_config(recipe: TinyRecipe, vocab_size: int, special_ids: dict) -> dict:
    return {
        "architectures": ["Lfm2MoeForCausalLM"],
        "model_type": "lfm2_moe",
        "vocab_size": vocab_size,
        "hidden_size": recipe.hidden_size,
        "intermediate_size": recipe.intermediate_size,
        "moe_intermediate_size": recipe.moe_intermediate_size,
        "num_hidden_layers": len(recipe.layer_types),
        "num_attention_heads": recipe.num_attention_heads,
        "num_key_value_heads": recipe.num_key_value_heads,
        "num_experts": recipe.num_experts,
        "num_experts_per_tok": recipe.num_experts_per_tok,
        "num_dense_layers": recipe.num_dense_layers,
        "norm_topk_prob": True,
        "use_expert_bias": True,
        "routed_scaling_factor": 1.0,
        "norm_eps": 1e-5,
        "conv_bias": False,
        "conv_L_cache": 3,
        "rope_theta": 1000000.0,
        "max_position_embeddings": recipe.max_position_embeddings,
        "tie_word_embeddings": True,
        "layer_types": list(recipe.layer_types),
        "edge_agent": {"builtin": recipe.name, "recipe_version": RECIPE_VERSION},
        **special_ids,
    }


def _randomize(model, recipe: TinyRecipe) -> None:
    """Seeded random weights with a scale that keeps the logits informative.

    mlx's default Linear init is fine for the blocks; the tied embedding is drawn
    smaller so that the output distribution is neither flat nor one-hot, and the expert
    bias is non-zero so that routing really depends on it.
    """
    mx.random.seed(recipe.seed)
    params = dict(tree_flatten(model.parameters()))
    updates = {}
    for path, value in params.items():
        if path.endswith("embed_tokens.weight"):
            updates[path] = mx.random.normal(value.shape) * recipe.embedding_std
        elif path.endswith("expert_bias"):
            updates[path] = mx.random.normal(value.shape) * 0.1
        elif path.endswith("norm.weight") or "layernorm" in path:
            updates[path] = mx.ones(value.shape)
        else:
            # Re-draw so the result does not depend on how modules were constructed.
            fan_in = value.shape[-1]
            bound = fan_in**-0.5
            updates[path] = mx.random.uniform(-bound, bound, value.shape)
    model.load_weights(list(updates.items()), strict=True)
    mx.eval(model.parameters())


def build_tiny(recipe: TinyRecipe, out_dir: Path, progress: ProgressCallback = silent_progress):
    """Build the model directory for `recipe` at `out_dir` (atomically)."""
    from mlx_lm.models import lfm2_moe
    from mlx_lm.utils import quantize_model, save_config, save_model

    steps = 4
    progress(f"Building {recipe.name}", 0, steps)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{recipe.name}-", dir=out_dir.parent))
    try:
        tokenizer = (
            train_small_bpe(recipe.small_vocab_size, seed=recipe.seed)
            if recipe.vocab == "small-bpe"
            else cl100k_bpe()
        )
        special_ids = save_hf_tokenizer(tokenizer, work, recipe.max_position_embeddings)
        progress(f"Building {recipe.name}", 1, steps)

        config = _model_config(recipe, tokenizer.get_vocab_size(), special_ids)
        model = lfm2_moe.Model(lfm2_moe.ModelArgs.from_dict(config))
        _randomize(model, recipe)
        progress(f"Building {recipe.name}", 2, steps)

        # Keep params like expert_bias in float32 as the real conversion does.
        model.update(
            tree_map(
                lambda p: p.astype(mx.bfloat16) if p.dtype == mx.float32 else p,
                model.parameters(),
            )
        )
        bias_fp32 = {
            k: v.astype(mx.float32)
            for k, v in cast(list[tuple[str, mx.array]], tree_flatten(model.parameters()))
            if not model.cast_predicate(k)
        }
        model.load_weights(list(bias_fp32.items()), strict=False)
        with contextlib.redirect_stdout(io.StringIO()):  # quantize_model prints a banner
            quantized, config = quantize_model(
                model,
                config,
                group_size=recipe.group_size,
                bits=recipe.bits,
                quant_predicate=model.quant_predicate,
            )
        progress(f"Building {recipe.name}", 3, steps)

        save_model(work, quantized)
        config["torch_dtype"] = "bfloat16"
        save_config(config, work / "config.json")
        (work / "generation_config.json").write_text(json.dumps(LFM2_GENERATION_CONFIG))
        (work / "edge_agent_build.json").write_text(
            json.dumps({"recipe": recipe.__dict__, "recipe_version": RECIPE_VERSION}, indent=2)
        )
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(work, out_dir)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    progress(f"Building {recipe.name}", steps, steps)
    return out_dir


def is_current_build(path: Path) -> bool:
    """True when `path` holds a complete build of the current recipe version."""
    marker = path / "edge_agent_build.json"
    if not (marker.exists() and (path / "config.json").exists()):
        return False
    try:
        return json.loads(marker.read_text()).get("recipe_version") == RECIPE_VERSION
    except (OSError, json.JSONDecodeError):
        return False
