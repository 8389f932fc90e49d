"""The CPU fast path: a fast BLAS in the process, float32 weights for small models.

MLX's Linux wheel (`mlx[cpu]`) computes matmuls with a bundled reference BLAS, and its
quantized matmul uses no BLAS at all. A small model dequantized to float32 runs its
matmuls through `cblas_sgemm`; when Intel's MKL (the PyPI wheel `mkl`, the `cpu-fast`
extra) is loaded into the process with `RTLD_GLOBAL` *before* `mlx.core` is first
imported, its `cblas_*` symbols are the ones the dynamic linker binds, and prefill runs
about 20x faster (SmolLM2-135M on 2 cores: 11 -> 210 tokens/s; see BENCHMARKS.md).
Quantized weights gain nothing from it, so the loader dequantizes a model only when the
fast BLAS is really in use and the float32 weights stay small (`dequantize_on_cpu`).
Apple silicon keeps the quantized Metal path; this module does nothing there.

`EDGE_AGENT_BLAS` overrides the search: a path to a BLAS library exporting the CBLAS
API, or `off` to keep MLX's own.

`defer_iri_checkers` is the other import-time cost: jsonschema's `format-nongpl` extra
checks `iri`/`iri-reference` with `rfc3987_syntax`, which builds a lark grammar when it
is imported (0.6 s on an idle machine here, 5.7 s on a loaded one), and jsonschema
imports it with its format module. The package is swapped for a stand-in whose
`is_valid_syntax` imports the real one on its first call, so the checks are the same.
"""

from __future__ import annotations

import ctypes
import importlib.abc
import importlib.machinery
import os
import platform
import sys
import types
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

BLAS_ENV = "EDGE_AGENT_BLAS"
# float32 weights above this stay quantized: memory, and the quantized kernels catch up.
MAX_FLOAT32_BYTES = 2 * 2**30

_blas: dict[str, str] = {}  # {"name": ..., "path": ...} once a fast BLAS is loaded


def _candidates() -> list[Path]:
    """Where pip puts `libmkl_rt.so.*`: `<prefix>/lib` of this environment or the user's."""
    import site

    prefixes = [sys.prefix, sys.base_prefix, getattr(site, "USER_BASE", None)]
    found: list[Path] = []
    for prefix in dict.fromkeys(p for p in prefixes if p):
        found += sorted(Path(prefix, "lib").glob("libmkl_rt.so*"))
    return found


def preload_blas() -> str | None:
    """Load a fast BLAS (MKL) globally, if installed and MLX is not imported yet.

    Returns the path of the library in use, or None. Safe to call more than once;
    never raises (a library that fails to load leaves MLX's own BLAS in place).
    """
    if _blas:
        return _blas["path"]
    choice = os.environ.get(BLAS_ENV, "").strip()
    if choice.lower() in ("off", "0", "none", "mlx"):
        return None
    if sys.platform != "linux" or "mlx.core" in sys.modules:
        return None  # macOS: Metal and Accelerate; MLX already bound its symbols
    paths = [Path(choice)] if choice else _candidates()
    if not choice and platform.machine().lower() not in ("x86_64", "amd64"):
        return None
    for path in paths:
        try:
            ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)
        except OSError:
            continue
        name = "mkl" if "mkl" in path.name else path.name.split(".so")[0].removeprefix("lib")
        _blas.update(name=name, path=str(path))
        return str(path)
    return None


def fast_blas() -> str | None:
    """The name of the fast BLAS MLX computes with ("mkl"), or None for its own."""
    return _blas.get("name")


def float32_bytes(module: Any, config: dict[str, Any]) -> int:
    """The size of `module`'s weights once dequantized to float32."""
    from mlx.utils import tree_flatten

    bits = (config.get("quantization") or {}).get("bits")
    total = 0
    # tree_flatten returns a list of (key, array) pairs unless given a `destination` dict.
    for key, value in cast(list[tuple[str, Any]], tree_flatten(module.parameters())):
        if key.endswith((".scales", ".biases")):
            continue
        packed = str(value.dtype) == "mlx.core.uint32" and bits
        total += value.size * 32 // bits if packed else value.size
    return total * 4


def dequantize_on_cpu(module: Any, config: dict[str, Any], allowed: bool = True) -> bool:
    """Dequantize `module` to float32 in place when that is the faster path; say if it did.

    Only on the CPU device, with a fast BLAS loaded, for a quantized model whose float32
    weights stay under `MAX_FLOAT32_BYTES`, and when `allowed` (the built-in `tiny`
    models keep their quantized kernels: they stand in for the 3-bit default model).
    """
    import mlx.core as mx

    if not allowed or fast_blas() is None or not config.get("quantization"):
        return False
    if mx.default_device().type != mx.DeviceType.cpu:
        return False
    if float32_bytes(module, config) > MAX_FLOAT32_BYTES:
        return False
    from mlx_lm.utils import dequantize_model

    dequantize_model(module)
    module.set_dtype(mx.float32)
    mx.eval(module.parameters())  # now, not during the first prompt's prefill
    return True


def dequantized_config(config: dict[str, Any]) -> dict[str, Any]:
    """`config` of a model after `dequantize_on_cpu`: no quantization, float32."""
    plain = {k: v for k, v in config.items() if k not in ("quantization", "quantization_config")}
    plain["torch_dtype"] = f"float32 ({fast_blas() or 'cpu'} fast path)"
    return plain


# ------------------------------------------------------------------ format checkers
_RFC3987 = "rfc3987_syntax"


class _DeferredRfc3987(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds `rfc3987_syntax` as a stand-in whose `is_valid_syntax` loads it on first use."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != _RFC3987:
            return None
        real = importlib.machinery.PathFinder.find_spec(fullname)
        if real is None or real.submodule_search_locations is None:
            return None  # not installed: the import fails as it would have
        spec = importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        spec.submodule_search_locations = list(real.submodule_search_locations)
        return spec

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        return None

    def exec_module(self, module: types.ModuleType) -> None:
        def helpers() -> types.ModuleType:
            return importlib.import_module(f"{_RFC3987}.syntax_helpers")

        def is_valid_syntax(term: str, value: str) -> bool:
            return helpers().is_valid_syntax(term, value)

        def __getattr__(name: str) -> Any:  # the rest of the package's API, on demand
            return getattr(helpers(), name)

        # The stand-in's namespace: is_valid_syntax, and the rest through PEP 562's __getattr__.
        vars(module).update(is_valid_syntax=is_valid_syntax, __getattr__=__getattr__)


_DEFERRED = _DeferredRfc3987()


def defer_iri_checkers() -> None:
    """Make importing jsonschema cheap: its iri checkers load `rfc3987_syntax` on use."""
    if "jsonschema" in sys.modules or _RFC3987 in sys.modules or _DEFERRED in sys.meta_path:
        return
    sys.meta_path.insert(0, _DEFERRED)
