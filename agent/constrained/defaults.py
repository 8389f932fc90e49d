"""Defaults shared by the grammar engines and their callers (no heavy imports here)."""

from __future__ import annotations

DEFAULT_COMPILE_TIMEOUT = 30.0  # seconds for one grammar, over every route
DEFAULT_MAX_PARALLEL_CALLS = 8  # calls in one call block (LFM2 emits a JSON array of them)
