"""Defaults shared by the grammar engines and their callers (no heavy imports here)."""

from __future__ import annotations

DEFAULT_COMPILE_TIMEOUT = 30.0  # seconds for one grammar, over every route
