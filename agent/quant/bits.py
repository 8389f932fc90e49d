"""Bits per weight and size of a model directory, read from the files alone.

`models list` shows these for every local model, so nothing here loads weights or
imports MLX: the safetensors headers give each tensor's shape and dtype, config.json
gives the bits of each quantized layer (per-layer overrides included). The figure is
the one `mlx_lm.utils.compute_bits_per_weight` gives for the loaded model: all stored
bytes (packed weights, scales, biases, unquantized tensors) over the parameter count.
"""

from __future__ import annotations

import json
import math
import struct
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_DTYPE_BYTES = {
    "F64": 8,
    "F32": 4,
    "F16": 2,
    "BF16": 2,
    "I64": 8,
    "I32": 4,
    "U32": 4,
    "I16": 2,
    "U16": 2,
    "I8": 1,
    "U8": 1,
    "BOOL": 1,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
}
_MAX_HEADER = 100 * 2**20


@dataclass(frozen=True)
class WeightsFootprint:
    """What a model directory's weights cost on disk."""

    file_bytes: int  # the safetensors files, headers included
    tensor_bytes: int
    parameters: int

    @property
    def bits_per_weight(self) -> float:
        return self.tensor_bytes * 8 / self.parameters if self.parameters else 0.0


def read_header(path: Path) -> dict[str, Any]:
    """The JSON header of a safetensors file (tensor name -> dtype, shape, offsets)."""
    with path.open("rb") as f:
        raw = f.read(8)
        if len(raw) != 8:
            raise ValueError(f"{path} is not a safetensors file (too short)")
        (size,) = struct.unpack("<Q", raw)
        if size > _MAX_HEADER:
            raise ValueError(f"{path} is not a safetensors file (header of {size} bytes)")
        header = json.loads(f.read(size))
    header.pop("__metadata__", None)
    return header


def _quant_bits(config: dict[str, Any], layer: str) -> int | None:
    quant = config.get("quantization") or config.get("quantization_config") or {}
    override = quant.get(layer)
    if isinstance(override, dict) and "bits" in override:
        return int(override["bits"])
    bits = quant.get("bits")
    return int(bits) if bits else None


def weights_footprint(model_dir: Path) -> WeightsFootprint:
    """Bytes and parameters of the weights in `model_dir` (ValueError if unreadable)."""
    model_dir = Path(model_dir)
    try:
        config = json.loads((model_dir / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read {model_dir / 'config.json'}: {exc}") from None
    files = sorted(model_dir.glob("*.safetensors"))
    if not files:
        raise ValueError(f"no .safetensors files in {model_dir}")
    tensors: dict[str, dict[str, Any]] = {}
    file_bytes = 0
    for file in files:
        file_bytes += file.stat().st_size
        tensors.update(read_header(file))
    tensor_bytes = 0
    parameters = 0
    for name, info in tensors.items():
        count = math.prod(info["shape"])
        tensor_bytes += count * _DTYPE_BYTES.get(info["dtype"], 4)
        layer, _, kind = name.rpartition(".")
        if kind in ("scales", "biases") and f"{layer}.weight" in tensors:
            continue  # quantization metadata: bytes, not parameters
        if kind == "weight" and f"{layer}.scales" in tensors:
            bits = _quant_bits(config, layer)
            packed = _DTYPE_BYTES.get(info["dtype"], 4) * 8
            parameters += count * packed // bits if bits else count
        else:
            parameters += count
    return WeightsFootprint(file_bytes, tensor_bytes, parameters)


def bits_per_weight(model_dir: Path) -> float | None:
    """The bits per weight of `model_dir`, None when it has no readable weights."""
    try:
        return weights_footprint(model_dir).bits_per_weight
    except (OSError, ValueError, KeyError, TypeError):
        return None


def describe_quantization(config: dict[str, Any]) -> str:
    """ "4-bit, group size 32 (30 layers at 8 bits)", or the dtype of an unquantized model."""
    quant = config.get("quantization") or {}
    if "bits" not in quant:
        return str(config.get("torch_dtype") or "unquantized")
    overrides = Counter(
        (v["bits"], v.get("group_size", quant.get("group_size", 64)))
        for v in quant.values()
        if isinstance(v, dict) and "bits" in v
    )
    extra = ", ".join(f"{n} at {b}-bit/{g}" for (b, g), n in sorted(overrides.items()))
    return f"{quant['bits']}-bit, group size {quant.get('group_size', 64)}" + (
        f" (layers set apart: {extra})" if extra else ""
    )
