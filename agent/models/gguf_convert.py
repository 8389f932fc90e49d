"""Convert a llama-architecture GGUF file into an MLX model directory.

Some small models are easiest to obtain as GGUF files (for instance inside a PyPI wheel),
while edge-agent runs models through `mlx_lm`. MLX reads GGUF natively and returns
Q4_0/Q4_1/Q8_0 tensors already packed in its own affine format (`weight` as uint32, plus
`scales` and `biases` per group of 32), so conversion is mostly renaming: no dequantize /
requantize round trip, hence no extra quality loss.

Two things do need care:

* llama.cpp's converter permutes the rows of the q/k projections so that RoPE can rotate
  adjacent pairs; `mlx_lm`'s llama uses the Hugging Face (half-split) layout, so the
  permutation is undone here. It only moves output rows, so it applies to the packed
  weight, the scales and the biases alike.
* The tokenizer only exists as GGUF metadata; a `tokenizer.json` is rebuilt from it with
  the `tokenizers` library so that `transformers`/`mlx_lm` load it offline.

The output directory is written to a temporary sibling and renamed into place at the end,
so an interrupted conversion never leaves something that looks like a model.
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any, Literal, cast

import mlx.core as mx

from agent.errors import UserError
from agent.progress import ProgressCallback, silent_progress

# Files whose joint presence means a converted directory is complete.
MODEL_FILES: tuple[str, ...] = ("config.json", "model.safetensors", "tokenizer.json")

# llama.cpp token types (llama_token_type in llama.h / gguf.TokenType).
_TOKEN_NORMAL = 1
_TOKEN_UNKNOWN = 2
_TOKEN_CONTROL = 3
_TOKEN_USER_DEFINED = 4

# Per-layer GGUF tensor names -> mlx_lm llama module paths (under model.layers.N).
_LAYER_NAMES: dict[str, str] = {
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
    "attn_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
}

_GLOBAL_NAMES: dict[str, str] = {
    "token_embd": "model.embed_tokens",
    "output_norm": "model.norm",
    "output": "lm_head",
}

# Pre-tokenizers (`tokenizer.ggml.pre`) whose Hugging Face equivalent is a ByteLevel split,
# optionally preceded by splitting every digit on its own (StarCoder / SmolLM vocabularies).
_DIGIT_SPLIT_PRE = {"smollm", "starcoder", "refact"}
_PLAIN_GPT2_PRE = {"gpt2", "default"}


def is_complete_model_dir(path: Path) -> bool:
    """True when `path` holds every file a converted model needs."""
    return all((path / name).is_file() for name in MODEL_FILES)


def convert_gguf_to_mlx(
    gguf_path: Path,
    out_dir: Path,
    progress: ProgressCallback = silent_progress,
    generation_config: dict[str, Any] | None = None,
) -> Path:
    """Convert a llama GGUF file into an `mlx_lm.load`-able directory at `out_dir`.

    `generation_config` (the model's recommended sampling, Hugging Face names) is
    written as generation_config.json; GGUF files do not carry it.

    Tensors MLX loads quantized (Q4_0/Q4_1/Q8_0) keep that quantization, with no
    requantization; tensors it dequantizes on load (other types) stay unquantized.
    An existing `out_dir` is replaced only once the new one is complete. Raises
    `UserError` for GGUF files this converter does not understand.
    """
    gguf_path = Path(gguf_path)
    out_dir = Path(out_dir)
    if not gguf_path.is_file():
        raise UserError(f"GGUF file not found: {gguf_path}")

    # A spinner: the phases (read, map, write, tokenizer) take very different times.
    phase = "Converting GGUF to MLX"
    progress(phase, 0, None)
    try:
        # mlx's stub has one return type for every format; a GGUF with metadata is a pair.
        tensors, metadata = cast(
            tuple[dict[str, mx.array], dict[str, Any]],
            mx.load(str(gguf_path), return_metadata=True),
        )
    except (RuntimeError, ValueError) as exc:
        raise UserError(f"cannot read GGUF file {gguf_path}: {exc}") from exc
    meta = {key: _plain(value) for key, value in metadata.items()}

    arch = meta.get("general.architecture")
    if arch != "llama":
        raise UserError(f"unsupported GGUF architecture {arch!r} in {gguf_path} (need 'llama')")

    config = _model_config(meta, tensors)
    weights, quantization = _convert_weights(tensors, config)
    config.update(quantization)

    _check_replaceable(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = out_dir.parent / f".{out_dir.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp_dir.mkdir()
    try:
        mx.save_safetensors(str(tmp_dir / "model.safetensors"), weights, {"format": "mlx"})
        del weights
        _write_tokenizer(meta, config, tmp_dir)
        _write_json(tmp_dir / "config.json", config)
        if generation_config:
            _write_json(tmp_dir / "generation_config.json", generation_config)
        _replace_dir(tmp_dir, out_dir)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    progress(phase, 1, 1)
    return out_dir


# --------------------------------------------------------------------------- metadata


def _plain(value: Any) -> Any:
    """GGUF scalars arrive as 0-d `mx.array`s; make them Python values for json."""
    if isinstance(value, mx.array):
        return value.item() if value.ndim == 0 else value.tolist()
    return value


def _model_config(meta: dict[str, Any], tensors: dict[str, mx.array]) -> dict[str, Any]:
    """The Hugging Face style config `mlx_lm.models.llama.ModelArgs` reads."""

    def need(key: str) -> Any:
        if f"llama.{key}" not in meta:
            raise UserError(f"GGUF metadata lacks llama.{key}")
        return meta[f"llama.{key}"]

    hidden = int(need("embedding_length"))
    n_heads = int(need("attention.head_count"))
    n_kv_heads = int(meta.get("llama.attention.head_count_kv", n_heads))
    head_dim = int(meta.get("llama.attention.key_length", hidden // n_heads))
    rope_dim = int(meta.get("llama.rope.dimension_count", head_dim))
    if rope_dim != head_dim:
        raise UserError(f"partial RoPE ({rope_dim} of {head_dim} dims) is not supported")
    tokens = meta.get("tokenizer.ggml.tokens") or []
    vocab_size = int(meta.get("llama.vocab_size", len(tokens)))

    config: dict[str, Any] = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": hidden,
        "num_hidden_layers": int(need("block_count")),
        "intermediate_size": int(need("feed_forward_length")),
        "num_attention_heads": n_heads,
        "num_key_value_heads": n_kv_heads,
        "head_dim": head_dim,
        # GGUF stores float32; 1e-05 reads back as 9.99999974e-06 unless rounded.
        "rms_norm_eps": float(f"{float(need('attention.layer_norm_rms_epsilon')):.7g}"),
        "rope_theta": float(meta.get("llama.rope.freq_base", 10000.0)),
        "rope_traditional": False,
        "vocab_size": vocab_size,
        "max_position_embeddings": int(meta.get("llama.context_length", 2048)),
        "tie_word_embeddings": "output.weight" not in tensors,
        "attention_bias": False,
        "mlp_bias": False,
        "hidden_act": "silu",
    }
    scaling = meta.get("llama.rope.scaling.type")
    if scaling == "linear":
        factor = float(meta["llama.rope.scaling.factor"])
        config["rope_scaling"] = {"type": "linear", "factor": factor}
    elif scaling not in (None, "none"):
        raise UserError(f"unsupported RoPE scaling {scaling!r} in GGUF metadata")

    for name in ("bos", "eos", "padding"):
        key = f"tokenizer.ggml.{name}_token_id"
        if key in meta:
            field = "pad_token_id" if name == "padding" else f"{name}_token_id"
            config[field] = int(meta[key])
    return config


# --------------------------------------------------------------------------- weights


def _mlx_name(gguf_name: str) -> tuple[str, str]:
    """Split a GGUF tensor name into (mlx module path, parameter suffix)."""
    base, _, suffix = gguf_name.rpartition(".")
    if suffix not in ("weight", "scales", "biases", "bias"):
        raise UserError(f"unexpected GGUF tensor {gguf_name!r}")
    parts = base.split(".")
    if len(parts) == 3 and parts[0] == "blk" and parts[2] in _LAYER_NAMES:
        return f"model.layers.{int(parts[1])}.{_LAYER_NAMES[parts[2]]}", suffix
    if base in _GLOBAL_NAMES:
        return _GLOBAL_NAMES[base], suffix
    raise UserError(f"unsupported GGUF tensor {gguf_name!r} for a llama model")


def _unpermute_rows(x: mx.array, n_heads: int) -> mx.array:
    """Undo llama.cpp's q/k `permute`: rows go from interleaved pairs back to halves.

    llama.cpp stores row (h, 2, d/2) of each head as (h, d/2, 2); swapping back only moves
    whole rows, so it is equally valid for packed weights, scales and biases.
    """
    rows = x.shape[0]
    half = rows // n_heads // 2
    return x.reshape(n_heads, half, 2, *x.shape[1:]).swapaxes(1, 2).reshape(x.shape)


def _convert_weights(
    tensors: dict[str, mx.array], config: dict[str, Any]
) -> tuple[dict[str, mx.array], dict[str, Any]]:
    """Rename tensors to mlx_lm paths, undo the q/k permutation, derive quantization.

    Returns the weights and the config entries (`quantization`, `quantization_config`)
    that make `mlx_lm` build matching quantized modules, with per-module overrides for
    modules whose bits or group size differ from the most common one, and `False` for
    linear/embedding modules GGUF stored unquantized.
    """
    heads = {
        "self_attn.q_proj": config["num_attention_heads"],
        "self_attn.k_proj": config["num_key_value_heads"],
    }
    hidden = config["hidden_size"]
    in_dims = {
        "self_attn.o_proj": config["num_attention_heads"] * config["head_dim"],
        "mlp.down_proj": config["intermediate_size"],
    }

    weights: dict[str, mx.array] = {}
    for gguf_name, array in tensors.items():
        module, suffix = _mlx_name(gguf_name)
        n_heads = next((n for key, n in heads.items() if module.endswith(key)), None)
        if n_heads is not None:
            array = _unpermute_rows(array, n_heads)
        weights[f"{module}.{suffix}"] = array

    # Quantization of every module that carries a weight matrix.
    per_module: dict[str, dict[str, int] | Literal[False]] = {}
    for name, array in weights.items():
        if not name.endswith(".weight") or name.endswith("norm.weight"):
            continue
        module = name[: -len(".weight")]
        scales = weights.get(f"{module}.scales")
        if scales is None:
            per_module[module] = False
            continue
        in_dim = next((d for key, d in in_dims.items() if module.endswith(key)), hidden)
        group_size = in_dim // scales.shape[-1]
        bits = array.shape[-1] * 32 // in_dim
        per_module[module] = {"group_size": group_size, "bits": bits}

    quantized = [q for q in per_module.values() if q]
    if not quantized:
        return weights, {}
    common = Counter((q["group_size"], q["bits"]) for q in quantized).most_common(1)[0][0]
    quantization: dict[str, Any] = {"group_size": common[0], "bits": common[1]}
    for module, q in sorted(per_module.items()):
        if not q or (q["group_size"], q["bits"]) != common:
            quantization[module] = q
    return weights, {"quantization": quantization, "quantization_config": quantization}


# --------------------------------------------------------------------------- tokenizer


def _write_tokenizer(meta: dict[str, Any], config: dict[str, Any], out: Path) -> None:
    """Write tokenizer.json, tokenizer_config.json and special_tokens_map.json."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors

    kind = meta.get("tokenizer.ggml.model")
    if kind != "gpt2":
        raise UserError(f"unsupported GGUF tokenizer {kind!r} (only byte-level BPE 'gpt2')")
    pre = meta.get("tokenizer.ggml.pre", "default")
    pre_tokenizer: pre_tokenizers.PreTokenizer
    if pre in _DIGIT_SPLIT_PRE:
        pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Digits(individual_digits=True),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
            ]
        )
    elif pre in _PLAIN_GPT2_PRE:
        pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    else:
        raise UserError(f"unsupported GGUF pre-tokenizer {pre!r}")

    tokens: list[str] = list(meta["tokenizer.ggml.tokens"])
    token_types: list[int] = list(
        meta.get("tokenizer.ggml.token_type") or [_TOKEN_NORMAL] * len(tokens)
    )
    vocab = {token: index for index, token in enumerate(tokens)}
    if len(vocab) != len(tokens):
        raise UserError("GGUF vocabulary has duplicate tokens")
    if len(token_types) != len(tokens):
        raise UserError("GGUF token types do not match the vocabulary")
    merges = [tuple(m.split(" ", 1)) for m in meta.get("tokenizer.ggml.merges") or []]

    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False))
    tokenizer.pre_tokenizer = pre_tokenizer
    tokenizer.decoder = decoders.ByteLevel()  # mlx_lm then picks its BPE detokenizer

    # Control tokens (<|im_start|> ...) must never be split by BPE and are skipped when
    # decoding with skip_special_tokens; user-defined ones are only kept whole.
    typed = list(zip(tokens, token_types, strict=True))
    specials = [t for t, k in typed if k in (_TOKEN_CONTROL, _TOKEN_UNKNOWN)]
    users = [t for t, k in typed if k == _TOKEN_USER_DEFINED]
    tokenizer.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in users])

    def token_for(key: str) -> str | None:
        index = meta.get(f"tokenizer.ggml.{key}_token_id")
        return tokens[int(index)] if index is not None and 0 <= int(index) < len(tokens) else None

    bos, eos, pad, unk = (token_for(k) for k in ("bos", "eos", "padding", "unknown"))
    add_bos = bool(meta.get("tokenizer.ggml.add_bos_token", False)) and bos is not None
    if add_bos:
        assert bos is not None  # add_bos requires it
        bos_id = vocab[bos]
        tokenizer.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, bos_id)]
        )
    else:
        tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    tokenizer.save(str(out / "tokenizer.json"))

    special_map = {
        name: value
        for name, value in (
            ("bos_token", bos),
            ("eos_token", eos),
            ("pad_token", pad),
            ("unk_token", unk),
        )
        if value is not None
    }
    extra = [t for t in specials if t not in special_map.values()]
    tokenizer_config: dict[str, Any] = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        **special_map,
        "additional_special_tokens": extra,
        "add_bos_token": add_bos,
        "add_eos_token": False,
        "add_prefix_space": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": config["max_position_embeddings"],
    }
    template = meta.get("tokenizer.chat_template")
    if template:
        tokenizer_config["chat_template"] = template
    _write_json(out / "tokenizer_config.json", tokenizer_config)
    _write_json(
        out / "special_tokens_map.json", {**special_map, "additional_special_tokens": extra}
    )


# --------------------------------------------------------------------------- files


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _check_replaceable(out_dir: Path) -> None:
    """Refuse to replace a directory that holds something other than a model."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"{out_dir} exists and is not a directory")
    holds_model = any((out_dir / name).exists() for name in MODEL_FILES)
    if out_dir.is_dir() and any(out_dir.iterdir()) and not holds_model:
        raise UserError(f"refusing to replace {out_dir}: it is not empty and holds no model")


def _replace_dir(new: Path, target: Path) -> None:
    """Move `new` to `target`, replacing whatever is there, via renames only."""
    if not target.exists():
        try:
            new.rename(target)
        except OSError:
            # Another process finished the same conversion first; keep its copy.
            if not is_complete_model_dir(target):
                raise
            shutil.rmtree(new, ignore_errors=True)
        return
    old = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}-{int(time.time())}"
    target.rename(old)
    try:
        new.rename(target)
    except BaseException:
        old.rename(target)
        raise
    shutil.rmtree(old, ignore_errors=True)
