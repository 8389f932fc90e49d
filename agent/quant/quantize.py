"""Build a quant of a model: mlx-lm's quantizer, driven by a `Recipe`.

The steps are mlx_lm.convert's (load lazily, cast, `quantize_model`, `save`), plus
what an edge user needs around them:

* the source can be any model spec edge-agent loads (built-in, directory, repo id)
  or a GGUF file, converted first with edge-agent's GGUF converter;
* a quantized source is dequantized first (mlx-lm refuses to quantize twice), and the
  report says so: a quant can never be better than its source;
* a group size that does not divide a layer's input size is refused up front with the
  layers named (mlx-lm would quietly leave those layers in full precision);
* progress per layer while the weights are quantized, and the output appears only
  once complete (written to a hidden sibling, then renamed).
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import tempfile
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

from agent.errors import UserError
from agent.progress import ProgressCallback, silent_progress
from agent.quant.bits import describe_quantization, weights_footprint
from agent.quant.recipes import Predicate, Recipe

BUILD_FILE = "edge_agent_quant.json"  # what built a quant: source, recipe, bits per weight
_DTYPES = ("float16", "bfloat16", "float32")


@dataclass(frozen=True)
class QuantResult:
    """What `quantize` built."""

    path: str
    source: str
    source_quantization: str  # "" for a full-precision source
    recipe: str
    recipe_kind: str
    description: str
    dtype: str
    quantized_layers: int
    unquantized_layers: int
    layer_bits: dict[int, int]  # bits -> number of layers at that precision
    bits_per_weight: float
    size_bytes: int
    parameters: int

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["layer_bits"] = {str(k): v for k, v in self.layer_bits.items()}
        return data


def check_output(out: Path) -> None:
    """OUT must not exist yet (like mlx_lm.convert), and its parent must be creatable."""
    if out.exists() or out.is_symlink():
        raise UserError(
            f"the output '{out}' already exists; pass a new directory or delete it first"
        )
    if out.parent.exists() and not out.parent.is_dir():
        raise UserError(f"the output's parent '{out.parent}' is not a directory")


def quantize(
    source: str,
    out: Path,
    recipe: Recipe,
    progress: ProgressCallback = silent_progress,
) -> QuantResult:
    """Quantize the model `source` names with `recipe` into the new directory `out`."""
    out = Path(out).expanduser()
    check_output(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create '{out.parent}': {exc.strerror or exc}") from None
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.quant-", dir=out.parent))
    try:
        src_dir = _source_dir(source, work, progress)
        result = _quantize_dir(source, src_dir, work / "out", recipe, progress)
        if out.exists():
            raise UserError(f"the output '{out}' appeared while quantizing; nothing written")
        (work / "out").rename(out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return QuantResult(**{**asdict(result), "path": str(out)})


def _source_dir(source: str, work: Path, progress: ProgressCallback) -> Path:
    """The MLX directory of `source`: a GGUF file is converted into `work` first."""
    from agent.llamacpp.models import gguf_source
    from agent.models.registry import resolve_model_path

    gguf = gguf_source(source)
    if gguf is not None and gguf.kind == "file":
        from agent.models.gguf_convert import convert_gguf_to_mlx

        assert gguf.path is not None
        if not gguf.path.is_file():
            raise UserError(f"no GGUF file at {gguf.path}")
        return convert_gguf_to_mlx(gguf.path, work / "from-gguf", progress)
    return resolve_model_path(source, progress)


def _quantize_dir(
    source: str, src_dir: Path, dest: Path, recipe: Recipe, progress: ProgressCallback
) -> QuantResult:
    import mlx.core as mx
    import mlx.nn as nn
    from mlx.utils import tree_map_with_path
    from mlx_lm.utils import dequantize_model, load, quantize_model, save

    phase = f"Quantizing {source} ({recipe.name})"
    progress(phase, 0, None)
    try:
        loaded = load(str(src_dir), return_config=True, lazy=True)
    except (ValueError, FileNotFoundError) as exc:
        raise UserError(f"cannot load the model in {src_dir}: {exc}") from None
    model, tokenizer, config = cast("tuple[nn.Module, Any, dict[str, Any]]", loaded)

    source_quantization = describe_quantization(config) if config.get("quantization") else ""
    if source_quantization:
        dequantize_model(model)
        config.pop("quantization", None)
        config.pop("quantization_config", None)

    dtype_name = _source_dtype(model, config)
    dtype = getattr(mx, dtype_name)
    cast_predicate = getattr(model, "cast_predicate", lambda _: True)

    def set_dtype(key: str, value: mx.array) -> mx.array:
        if cast_predicate(key) and mx.issubdtype(value.dtype, mx.floating):
            return value.astype(dtype)
        return value

    model.update(tree_map_with_path(set_dtype, model.parameters()))

    predicate = recipe.predicate(model)
    plan = _layer_plan(model, recipe, predicate)
    total = sum(p is not None for p in plan.values())
    if not total:
        raise UserError(f"{source} has no layer that {recipe.describe()} can quantize")

    with contextlib.redirect_stdout(io.StringIO()):  # quantize_model prints a banner
        model, config = quantize_model(
            model,
            config,
            recipe.group_size,
            recipe.bits,
            quant_predicate=predicate,
        )
    # quantize_model is lazy: the work happens here, one layer at a time, with progress.
    progress(phase, 0, total)
    for done, (_, module) in enumerate(_quantizable(model), start=1):
        mx.eval(module.parameters())
        progress(phase, done, total)
    mx.eval(model.parameters())

    config["torch_dtype"] = dtype_name
    with contextlib.redirect_stdout(io.StringIO()):
        save(dest, src_dir, model, tokenizer, config)
    footprint = weights_footprint(dest)
    layer_bits = Counter(p[0] for p in plan.values() if p is not None)
    result = QuantResult(
        path=str(dest),
        source=source,
        source_quantization=source_quantization,
        recipe=recipe.name,
        recipe_kind=recipe.kind,
        description=recipe.describe(),
        dtype=dtype_name,
        quantized_layers=sum(layer_bits.values()),
        unquantized_layers=sum(p is None for p in plan.values()),
        layer_bits=dict(sorted(layer_bits.items())),
        bits_per_weight=round(footprint.bits_per_weight, 4),
        size_bytes=footprint.file_bytes,
        parameters=footprint.parameters,
    )
    (dest / BUILD_FILE).write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    return result


def _quantizable(model: Any) -> list[tuple[str, Any]]:
    """The layers that are quantized now (after quantize_model)."""
    return [
        (path, m)
        for path, m in model.named_modules()
        if hasattr(m, "bits") and hasattr(m, "scales") and hasattr(m, "group_size")
    ]


def _source_dtype(model: Any, config: dict[str, Any]) -> str:
    """The dtype to keep: config.json's, else the weights' own (a dequantized GGUF is
    float16: casting it to bfloat16 would round every weight before quantizing)."""
    from mlx.utils import tree_flatten

    declared = str(config.get("torch_dtype") or "")
    if declared in _DTYPES:
        return declared
    counts: Counter[str] = Counter()
    for _, value in cast("list[tuple[str, Any]]", tree_flatten(model.parameters())):
        name = str(value.dtype).rpartition(".")[2]
        if name in _DTYPES:
            counts[name] += value.size
    return counts.most_common(1)[0][0] if counts else "bfloat16"


def _layer_plan(
    model: Any, recipe: Recipe, predicate: Predicate | None
) -> dict[str, tuple[int, int] | None]:
    """Each quantizable layer's (bits, group size), None when it stays unquantized;
    a UserError naming the layers whose input size the group size does not divide."""
    own: Predicate | None = getattr(model, "quant_predicate", None)
    chosen = predicate or own
    plan: dict[str, tuple[int, int] | None] = {}
    misfits: list[tuple[str, int, int]] = []
    for path, module in model.named_modules():
        if not hasattr(module, "to_quantized") or not hasattr(module, "weight"):
            continue
        verdict: bool | dict[str, Any] = True if chosen is None else chosen(path, module)
        if verdict is False:
            plan[path] = None
            continue
        params = verdict if isinstance(verdict, dict) else {}
        bits = int(params.get("bits", recipe.bits))
        group_size = int(params.get("group_size", recipe.group_size))
        in_dims = int(module.weight.shape[-1])
        # mlx-lm checks the recipe's group size too (and skips such layers silently).
        for size in (group_size, recipe.group_size):
            if in_dims % size:
                misfits.append((path, in_dims, size))
                break
        plan[path] = (bits, group_size)
    if misfits:
        path, in_dims, group_size = misfits[0]
        fits = [g for g in (32, 64, 128) if all(d % g == 0 for _, d, _ in misfits)]
        hint = f"use --group-size {fits[-1]}" if fits else "use a smaller group size"
        raise UserError(
            f"group size {group_size} does not divide the input size of {len(misfits)} "
            f"layer(s) of this model (e.g. {path}: {in_dims}); {hint}"
        )
    return plan
