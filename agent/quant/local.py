"""The quants this machine built, so that `models list` can show them wherever they are.

`edge-agent quantize` writes OUT where the user says; a small JSON list in the models
directory remembers each one (path and recipe). Entries whose directory is gone are
dropped when read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agent.paths import models_dir, write_atomic

INDEX_FILE = "quants.json"


def _index() -> Path:
    return models_dir() / INDEX_FILE


def built_quants() -> list[dict[str, Any]]:
    """[{"path": ..., "recipe": ...}] of quants still on disk, oldest first."""
    try:
        entries = json.loads(_index().read_text())
    except (OSError, json.JSONDecodeError):
        return []
    if not isinstance(entries, list):
        return []
    return [
        e
        for e in entries
        if isinstance(e, dict)
        and isinstance(e.get("path"), str)
        and (Path(e["path"]) / "config.json").is_file()
    ]


def record_quant(path: Path, recipe: str) -> None:
    """Remember the quant at `path` (replacing an older entry for the same path)."""
    resolved = str(Path(path).resolve())
    entries = [e for e in built_quants() if e["path"] != resolved]
    entries.append({"path": resolved, "recipe": recipe})
    index = _index()
    write_atomic(index, json.dumps(entries, indent=2) + "\n")
