"""`edge-agent engines`: which engines can run models here, their versions, how to install."""

from __future__ import annotations

import argparse
import json
import platform
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class EngineStatus:
    name: str
    available: bool
    version: str
    runs: str
    install: str


def engine_statuses() -> list[EngineStatus]:
    """Every engine edge-agent knows, without importing any of them."""
    from importlib.metadata import PackageNotFoundError, version

    from agent.llamacpp import INSTALL_HINT, llama_cpp_version

    def installed(package: str) -> str:
        try:
            return version(package)
        except PackageNotFoundError:
            return ""

    mlx = installed("mlx")
    llama = llama_cpp_version() or ""
    httpx = installed("httpx")
    on_mac = platform.system() == "Darwin"
    return [
        EngineStatus(
            "mlx", bool(mlx), mlx,
            "MLX models in process (Metal on Apple silicon, the CPU elsewhere)",
            'pip install "mlx"' if on_mac else 'pip install "mlx[cpu]"',
        ),
        EngineStatus(
            "llama.cpp", bool(llama), llama,
            "GGUF models in process (every CPU; CUDA/Metal with a GPU build)", INSTALL_HINT,
        ),
        EngineStatus(
            "openai", bool(httpx), httpx,
            "any OpenAI-compatible server over HTTP (--model openai:URL#name)", "included",
        ),
    ]  # fmt: skip


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("engines", help="list the engines that can run models, and how to add one")
    p.add_argument("--json", action="store_true", help="print the list as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from agent.loader import apple_silicon

    statuses = engine_statuses()
    if args.json:
        print(json.dumps([asdict(s) for s in statuses], indent=2))
        return 0
    for s in statuses:
        state = f"installed {s.version}" if s.available else "not installed"
        print(f"{s.name:<10} {state:<22} {s.runs}")
        if not s.available:
            print(f"{'':<10} install: {s.install}")
    local = "mlx" if apple_silicon() else "llama.cpp when installed, else mlx"
    print(f"\n--engine auto picks: {local}")
    return 0
