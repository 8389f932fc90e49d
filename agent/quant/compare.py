"""Measure quants side by side: size, bits per weight, perplexity, speed, memory, RAM plan.

Every model is measured the same way, one after the other (never two in memory):

* size and bits per weight from the files (`agent.quant.bits`);
* speed as `mlx_lm.benchmark` measures it: a fixed prompt (the corpus' first tokens),
  a warm-up, then one timed `mlx_lm.generate.generate_step` run of a fixed number of
  tokens (no stop at end-of-sequence), with the quantized weights as stored and the
  activations in the dtype edge-agent computes in on this device; peak memory is MLX's
  over that run;
* perplexity with `mlx_lm.perplexity.eval_ppl` (mean cross-entropy over the same token
  windows for every model, and its standard error). On a CPU with the fast BLAS
  (agent/fastpath.py) the weights are dequantized first, exactly as the loader does
  there: the same numbers in float32, computed some 20x faster;
* the RAM plan per context length from `agent.memory_plan` (the model's config).
"""

from __future__ import annotations

import contextlib
import gc
import io
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

from agent.errors import UserError
from agent.progress import ProgressCallback, silent_progress
from agent.quant.bits import describe_quantization, weights_footprint
from agent.quant.corpus import Corpus, windows


@dataclass(frozen=True)
class CompareSettings:
    contexts: tuple[int, ...] = (4096, 8192, 16384)
    max_tokens: int = 4096  # evaluation tokens at most
    sequence_length: int = 512
    batch_size: int = 2
    prompt_tokens: int = 128
    generation_tokens: int = 32


@dataclass
class ModelFigures:
    """One row of the comparison."""

    name: str
    path: str
    quantization: str
    size_bytes: int
    bits_per_weight: float
    parameters: int
    perplexity: float
    perplexity_se: float
    prefill_tps: float
    decode_tps: float
    peak_memory_bytes: int
    # context length -> estimated peak bytes; None above the model's context window.
    ram_plan: dict[int, int | None] = field(default_factory=dict)
    perplexity_weights: str = ""  # how the perplexity pass ran the weights


@dataclass
class Comparison:
    corpus: str
    evaluated_tokens: int
    windows: int
    sequence_length: int
    settings: CompareSettings
    models: list[ModelFigures]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for row in data["models"]:
            row["ram_plan"] = {str(k): v for k, v in row["ram_plan"].items()}
        data["settings"]["contexts"] = list(self.settings.contexts)
        return data


def display_name(spec: str) -> str:
    path = Path(spec).expanduser()
    return path.name if path.is_dir() else spec


def model_dir(spec: str, progress: ProgressCallback = silent_progress) -> Path:
    """The MLX directory of `spec`; a GGUF is refused (quantize converts it first)."""
    from agent.llamacpp.models import gguf_source
    from agent.models.registry import resolve_model_path

    source = gguf_source(spec)
    if source is not None and source.kind == "file":
        raise UserError(
            f"'{spec}' is a GGUF file; compare measures MLX models: convert it first with "
            f"`edge-agent quantize {spec} OUT --bits 8`"
        )
    return resolve_model_path(spec, progress)


def compare(
    specs: Sequence[str],
    corpus: Corpus,
    settings: CompareSettings = CompareSettings(),
    progress: ProgressCallback = silent_progress,
) -> Comparison:
    """Measure every model in `specs` on `corpus` (see the module docstring)."""
    if not specs:
        raise UserError("name at least one model to compare")
    dirs = [model_dir(spec, progress) for spec in specs]  # bad specs fail before any work
    reference: list[int] | None = None
    rows: list[ModelFigures] = []
    for spec, path in zip(specs, dirs, strict=True):
        row, tokens = _measure(spec, path, corpus, settings, reference, progress)
        reference = reference or tokens
        rows.append(row)
    assert reference is not None
    chunks = windows(reference, settings.sequence_length)
    return Comparison(
        corpus=corpus.name,
        evaluated_tokens=sum(len(c) for c in chunks),
        windows=len(chunks),
        sequence_length=len(chunks[0]),
        settings=settings,
        models=rows,
    )


def _measure(
    spec: str,
    path: Path,
    corpus: Corpus,
    settings: CompareSettings,
    reference: list[int] | None,
    progress: ProgressCallback,
) -> tuple[ModelFigures, list[int]]:
    import mlx.core as mx
    import mlx.nn as nn
    from mlx_lm.utils import load

    from agent.fastpath import dequantize_on_cpu, fast_blas
    from agent.loader import use_float32_on_cpu
    from agent.memory_plan import plan_memory

    name = display_name(spec)
    footprint = weights_footprint(path)
    progress(f"Loading {name}", 0, 1)
    try:
        loaded = load(str(path), return_config=True)
    except (ValueError, FileNotFoundError) as exc:
        raise UserError(f"cannot load the model in {path}: {exc}") from None
    module, tokenizer, config = cast("tuple[nn.Module, Any, dict[str, Any]]", loaded)
    use_float32_on_cpu(module)
    progress(f"Loading {name}", 1, 1)

    tokens = corpus.tokens(tokenizer, settings.max_tokens)
    if reference is not None and tokens != reference:
        raise UserError(
            f"{name} tokenizes the corpus differently from the first model; perplexities "
            "are only comparable on the same tokens: compare quants of one model"
        )
    chunks = windows(tokens, settings.sequence_length)

    prefill_tps, decode_tps, peak = _speed(module, tokens, settings, name, progress)

    ran = "quantized kernels" if config.get("quantization") else "as stored"
    if dequantize_on_cpu(module, config):
        ran = f"dequantized to float32 ({fast_blas()} fast path)"
    ppl, se = _perplexity(module, mx.array(chunks), settings.batch_size, name, progress)

    plans: dict[int, int | None] = {}
    limit = config.get("max_position_embeddings")
    for context in settings.contexts:
        plans[context] = (
            None if limit and context > limit else plan_memory(config, context, name).peak_bytes
        )
    row = ModelFigures(
        name=name,
        path=str(path),
        quantization=describe_quantization(config),
        size_bytes=footprint.file_bytes,
        bits_per_weight=round(footprint.bits_per_weight, 4),
        parameters=footprint.parameters,
        perplexity=ppl,
        perplexity_se=se,
        prefill_tps=prefill_tps,
        decode_tps=decode_tps,
        peak_memory_bytes=peak,
        ram_plan=plans,
        perplexity_weights=ran,
    )
    del module
    gc.collect()
    mx.clear_cache()
    return row, tokens


def _speed(
    module: Any,
    tokens: list[int],
    settings: CompareSettings,
    name: str,
    progress: ProgressCallback,
) -> tuple[float, float, int]:
    """(prefill tok/s, decode tok/s, peak bytes) of one timed run after a warm-up."""
    import mlx.core as mx
    from mlx_lm.generate import generate_step

    prompt_len = max(1, min(settings.prompt_tokens, len(tokens)))
    prompt = mx.array(tokens[:prompt_len])
    phase = f"Timing {name} ({prompt_len} prompt + {settings.generation_tokens} tokens)"
    progress(phase, 0, 2)
    for _ in generate_step(prompt[: min(16, prompt_len)], module, max_tokens=4):
        pass  # warm-up: first-call kernel setup stays out of the figures
    progress(phase, 1, 2)
    mx.reset_peak_memory()
    generated = 0
    start = time.perf_counter()
    first = start
    for generated, _ in enumerate(
        generate_step(prompt, module, max_tokens=settings.generation_tokens), start=1
    ):
        if generated == 1:
            first = time.perf_counter()
    end = time.perf_counter()
    progress(phase, 2, 2)
    prefill_tps = prompt_len / (first - start) if first > start else 0.0
    decode_tps = (generated - 1) / (end - first) if generated > 1 and end > first else 0.0
    return prefill_tps, decode_tps, int(mx.get_peak_memory())


class _BatchProgress(io.TextIOBase):
    """Turns eval_ppl's "Processed i/n batches" lines into progress calls."""

    _LINE = re.compile(r"Processed (\d+)/(\d+)")

    def __init__(self, phase: str, progress: ProgressCallback) -> None:
        super().__init__()
        self.phase = phase
        self.progress = progress

    def write(self, text: str) -> int:
        for done, total in self._LINE.findall(text):
            self.progress(self.phase, float(done), float(total))
        return len(text)


def _perplexity(
    module: Any, data: Any, batch_size: int, name: str, progress: ProgressCallback
) -> tuple[float, float]:
    from mlx_lm.perplexity import eval_ppl

    phase = f"Perplexity of {name}"
    batches = (len(data) + batch_size - 1) // batch_size
    progress(phase, 0, batches)
    with contextlib.redirect_stdout(_BatchProgress(phase, progress)):
        ppl, se = eval_ppl(module, data, batch_size=batch_size)
    progress(phase, batches, batches)
    return float(ppl), float(se)
