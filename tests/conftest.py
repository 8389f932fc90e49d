"""Shared fixtures. Tests run real MLX models; the built-in tiny model is built once
per session into an isolated cache directory (unless EDGE_AGENT_CACHE_DIR is set, which
lets a developer keep built models between runs)."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

_SESSION_TMP = Path(tempfile.mkdtemp(prefix="edge-agent-tests-"))
atexit.register(shutil.rmtree, _SESSION_TMP, ignore_errors=True)
os.environ.setdefault("EDGE_AGENT_CACHE_DIR", str(_SESSION_TMP / "cache"))
os.environ.setdefault("EDGE_AGENT_DATA_DIR", str(_SESSION_TMP / "data"))
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


@pytest.fixture(scope="session")
def tiny():
    """The built-in random-weight LFM2-MoE model, loaded once."""
    from agent import load_model

    return load_model("tiny")


@pytest.fixture
def fresh_tiny(tiny):
    """`tiny` with an empty prompt cache."""
    tiny.reset_cache()
    return tiny


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    """A private user data directory for tests that persist things."""
    path = tmp_path / "data"
    monkeypatch.setenv("EDGE_AGENT_DATA_DIR", str(path))
    return path
