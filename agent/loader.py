"""`load_model`: from a model spec to a ready `Model`, through `mlx_lm.load`."""

from __future__ import annotations

import time

import mlx.core as mx
import mlx.nn as nn

from agent.errors import ModelNotFoundError
from agent.fastpath import dequantize_on_cpu, dequantized_config
from agent.models.registry import BUILTIN_MODELS, DEFAULT_MODEL, read_config, resolve_model_path
from agent.progress import ProgressCallback, silent_progress
from agent.runtime import Model

_LOADED: dict[str, Model] = {}


def compute_dtype_for_device() -> mx.Dtype | None:
    """float32 on the CPU backend, else keep the checkpoint's dtype.

    MLX's CPU quantized matmul is ~15x slower with bfloat16 scales and activations
    than with float32 (see BENCHMARKS.md); the cost is 0.5 bit per weight more for the
    scales and biases of a 3-bit model.
    """
    return mx.float32 if mx.default_device().type == mx.DeviceType.cpu else None


def use_float32_on_cpu(module: nn.Module) -> None:
    dtype = compute_dtype_for_device()
    if dtype is not None:
        module.set_dtype(dtype)


def load_model(
    spec: str = DEFAULT_MODEL,
    progress: ProgressCallback = silent_progress,
    *,
    reuse: bool = False,
) -> Model:
    """Load a model by built-in name, local MLX directory or Hugging Face repo id.

    On a CPU with a fast BLAS loaded (agent/fastpath.py) a small quantized model is
    dequantized to float32, which is several times faster there.

    With `reuse=True` a model already loaded in this process under the same spec is
    returned (with its prompt cache) instead of loading the weights again.
    """
    if reuse and spec in _LOADED:
        return _LOADED[spec]
    from mlx_lm import load as mlx_load

    path = resolve_model_path(spec, progress)
    config = read_config(path)
    progress(f"Loading {spec}", 0, 1)
    t0 = time.perf_counter()
    try:
        module, tokenizer = mlx_load(str(path))
    except (ValueError, FileNotFoundError) as exc:
        raise ModelNotFoundError(f"cannot load the model in {path}: {exc}") from None
    builtin = BUILTIN_MODELS.get(spec)
    if dequantize_on_cpu(module, config, allowed=builtin is None or builtin.cpu_fast_path):
        config = dequantized_config(config)
    else:
        use_float32_on_cpu(module)
    progress(f"Loading {spec}", 1, 1)
    model = Model(spec, path, module, tokenizer, config, load_seconds=time.perf_counter() - t0)
    _LOADED[spec] = model
    return model
