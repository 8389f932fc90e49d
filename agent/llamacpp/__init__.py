"""llama.cpp as an engine: GGUF models in this process, under edge-agent's grammars.

`llama-cpp-python` is optional (the `llama-cpp` extra builds it from source); this package
imports it only when a model is loaded, so its absence costs nothing until asked for.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

INSTALL_HINT = (
    'pip install -e ".[llama-cpp]"  (builds llama-cpp-python from source: about 5 minutes '
    "on 2 cores; set CMAKE_ARGS for GPU builds)"
)


def llama_cpp_version() -> str | None:
    """The installed llama-cpp-python version, or None."""
    try:
        return version("llama-cpp-python")
    except PackageNotFoundError:
        return None


def is_available() -> bool:
    if llama_cpp_version() is None:
        return False
    try:
        import llama_cpp  # noqa: F401
    except (ImportError, OSError):
        return False
    return True
