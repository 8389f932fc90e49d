"""`load_model`: from a model spec to a ready runtime, on the engine that suits it.

Two local engines run models in this process: MLX (mlx-lm; Apple silicon's Metal, or
the CPU elsewhere) and llama.cpp (llama-cpp-python; GGUF files, fast on every CPU). The
`engine` argument picks one; `auto` takes MLX on Apple silicon, llama.cpp elsewhere when
it is installed and the spec names a GGUF (smollm2, gguf:PATH, LFM2-8B-A1B's GGUF
release), and MLX otherwise.
"""

from __future__ import annotations

import logging
import platform
import sys
import time
from typing import TYPE_CHECKING, Any, Literal, cast

from agent.errors import ModelNotFoundError, UserError
from agent.models.registry import BUILTIN_MODELS, DEFAULT_MODEL, read_config, resolve_model_path
from agent.progress import ProgressCallback, silent_progress

if TYPE_CHECKING:
    import mlx.core as mx
    import mlx.nn as nn
    from mlx_lm.tokenizer_utils import TokenizerWrapper

    from agent.token_runtime import TokenRuntime

EngineName = Literal["auto", "mlx", "llama.cpp"]
ENGINES: tuple[EngineName, ...] = ("auto", "mlx", "llama.cpp")

_LOADED: dict[tuple[str, str], Any] = {}
log = logging.getLogger(__name__)


def apple_silicon() -> bool:
    return sys.platform == "darwin" and platform.machine() == "arm64"


def choose_engine(spec: str, engine: str = "auto") -> Literal["mlx", "llama.cpp"]:
    """The local engine that will run `spec` (see the module docstring)."""
    from agent.llamacpp import INSTALL_HINT, is_available
    from agent.llamacpp.models import gguf_source

    if engine not in ENGINES:
        raise UserError(f"--engine must be one of {', '.join(ENGINES)}, got '{engine}'")
    source = gguf_source(spec)
    if engine == "mlx":
        if source is not None and source.kind == "file":
            raise UserError(f"'{spec}' is a GGUF file: run it with --engine llama.cpp")
        return "mlx"
    if engine == "llama.cpp":
        if not is_available():
            raise UserError(f"the llama.cpp engine is not installed: {INSTALL_HINT}")
        if source is None:
            raise UserError(
                f"'{spec}' has no GGUF for llama.cpp (smollm2, gguf:PATH and LFM2-8B-A1B "
                "do); use --engine mlx"
            )
        return "llama.cpp"
    if source is not None and source.kind == "file":
        return "llama.cpp"  # checked for installation when it loads
    if apple_silicon() or source is None or source.kind == "tiny" or not is_available():
        return "mlx"  # the tiny GGUF is llama.cpp's test model: asked for by name only
    return "llama.cpp"


def compute_dtype_for_device() -> mx.Dtype | None:
    """float32 on the CPU backend, else keep the checkpoint's dtype.

    MLX's CPU quantized matmul is ~15x slower with bfloat16 scales and activations
    than with float32 (see BENCHMARKS.md); the cost is 0.5 bit per weight more for the
    scales and biases of a 3-bit model.
    """
    import mlx.core as mx

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
    engine: str = "auto",
) -> TokenRuntime:
    """Load a model by built-in name, local directory, GGUF or Hugging Face repo id.

    On a CPU with a fast BLAS loaded (agent/fastpath.py) a small quantized MLX model is
    dequantized to float32, which is several times faster there.

    With `reuse=True` a model already loaded in this process under the same spec and
    engine is returned (with its prompt cache) instead of loading the weights again.
    """
    chosen = choose_engine(spec, engine)
    key = (spec, chosen)
    if reuse and key in _LOADED:
        log.debug("model %s (%s) already loaded: reused", spec, chosen)
        return _LOADED[key]
    log.debug("loading model %s with the %s engine (asked: %s)", spec, chosen, engine)
    t0 = time.perf_counter()
    if chosen == "llama.cpp":
        from agent.llamacpp.models import load_llamacpp

        model = load_llamacpp(spec, progress)
    else:
        model = _load_mlx(spec, progress)
    log.info("loaded model %s (%s) in %.2f s", spec, chosen, time.perf_counter() - t0)
    _LOADED[key] = model
    return model


def _load_mlx(spec: str, progress: ProgressCallback) -> Any:
    from mlx_lm import load as mlx_load

    from agent.fastpath import dequantize_on_cpu, dequantized_config
    from agent.runtime import Model

    path = resolve_model_path(spec, progress)
    config = read_config(path)
    progress(f"Loading {spec}", 0, 1)
    t0 = time.perf_counter()
    try:
        # Without return_config, load returns a pair (its annotation also allows a triple).
        module, tokenizer = cast("tuple[nn.Module, TokenizerWrapper]", mlx_load(str(path)))
    except (ValueError, FileNotFoundError) as exc:
        raise ModelNotFoundError(f"cannot load the model in {path}: {exc}") from None
    builtin = BUILTIN_MODELS.get(spec)
    if dequantize_on_cpu(module, config, allowed=builtin is None or builtin.cpu_fast_path):
        config = dequantized_config(config)
    else:
        use_float32_on_cpu(module)
    progress(f"Loading {spec}", 1, 1)
    return Model(spec, path, module, tokenizer, config, load_seconds=time.perf_counter() - t0)
