"""Describe the machine a benchmark ran on, for BENCHMARKS.md."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib.metadata import version


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    try:
        out = subprocess.run(
            ["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True
        )
        return out.stdout.strip() or platform.processor()
    except OSError:
        return platform.processor()


def machine_description() -> str:
    import mlx.core as mx

    mem = ""
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        mem = f", {pages / 2**30:.0f} GiB RAM"
    except (ValueError, OSError):
        pass
    return (
        f"{platform.system()} {platform.machine()}, {_cpu_model()}, {os.cpu_count()} cores{mem}; "
        f"Python {platform.python_version()}, mlx {version('mlx')} ({mx.default_device()}), "
        f"mlx-lm {version('mlx-lm')}, outlines-core {version('outlines-core')}"
    )
