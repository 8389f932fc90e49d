"""Where the tests find the shared benchmark data: beside the checkout
(`../shared/data`), or where `EDGE_AGENT_SHARED_DATA` says; never a machine's own path."""

from __future__ import annotations

import os
from pathlib import Path

SHARED_DATA = (
    Path(os.environ["EDGE_AGENT_SHARED_DATA"])
    if os.environ.get("EDGE_AGENT_SHARED_DATA")
    else Path(__file__).resolve().parents[2] / "shared" / "data"
)
JSONSCHEMABENCH = SHARED_DATA / "jsonschemabench"
NO_JSONSCHEMABENCH = (
    "JSONSchemaBench data not found: put it in ../shared/data/jsonschemabench beside the "
    "checkout or set EDGE_AGENT_SHARED_DATA"
)
