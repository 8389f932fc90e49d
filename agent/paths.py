"""Where edge-agent keeps built models, compiled grammars, sessions and indexes.

Everything lives under per-user directories (platformdirs), and each can be moved
with an environment variable so tests and CI can run in isolation.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import platformdirs

from agent.errors import UserError

APP_NAME = "edge-agent"


def _dir(env_var: str, default: str) -> Path:
    """The directory, made if missing; a UserError naming the way out if it cannot be
    (a file in the way, no permission, a read-only disk) instead of an OSError chain."""
    path = Path(os.environ.get(env_var) or default).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(
            f"cannot create the directory {path}: {exc.strerror or exc}; "
            f"set {env_var} to a writable directory"
        ) from None
    return path


def cache_dir() -> Path:
    """Rebuildable artefacts: converted models, compiled grammar indexes."""
    return _dir("EDGE_AGENT_CACHE_DIR", platformdirs.user_cache_dir(APP_NAME))


def data_dir() -> Path:
    """User data that must survive: sessions, retrieval indexes."""
    return _dir("EDGE_AGENT_DATA_DIR", platformdirs.user_data_dir(APP_NAME))


def models_dir() -> Path:
    """Local MLX model directories built or converted by edge-agent."""
    path = cache_dir() / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write `path` whole or not at all: a reader (another thread or process, a run
    started beside this one) sees the old file or the new one, never half of one. The
    temporary file has a name of its own, so two writers never share it."""
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
