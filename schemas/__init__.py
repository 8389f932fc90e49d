"""Shipped JSON Schemas and the schema layer that turns schemas into grammars."""

from __future__ import annotations

import json
import logging
from functools import cache
from importlib import resources
from typing import Any

# Quiet unless the application configures logging (the CLI: --verbose, EDGE_AGENT_LOG).
logging.getLogger(__name__).addHandler(logging.NullHandler())


@cache
def shipped_schema_names() -> tuple[str, ...]:
    files = resources.files(__package__)
    return tuple(sorted(f.name[:-5] for f in files.iterdir() if f.name.endswith(".json")))


def shipped_schema(name: str) -> Any:
    """One of the JSON Schemas shipped with edge-agent, by name (e.g. "contact")."""
    if name not in shipped_schema_names():
        raise KeyError(name)
    return json.loads(resources.files(__package__).joinpath(f"{name}.json").read_text())
