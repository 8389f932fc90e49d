"""Defaults shared by the grammar engines and their callers (no heavy imports here)."""

from __future__ import annotations

DEFAULT_COMPILE_TIMEOUT = 30.0  # seconds for one grammar, over every route
DEFAULT_MAX_PARALLEL_CALLS = 8  # calls in one call block (LFM2 emits a JSON array of them)
# Whitespace a call grammar allows between JSON tokens for a model without native call
# tokens: llama.cpp's JSON-schema SPACE_RULE (nothing, a space, or one or two newlines
# and up to 20 spaces or tabs). Bounded, so a weak model cannot loop on spaces, and loose
# enough for the pretty-printed JSON such models learned: on BFCL's simple cases SmolLM2
# copied values wrongly far more often when every call had to be compact.
LOOSE_JSON_WHITESPACE = r"(?: |\n{1,2}[ \t]{0,20})?"
