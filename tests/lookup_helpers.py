"""Shared by the prompt lookup tests: one extraction without drafts and one with."""

from __future__ import annotations

from typing import Any

from agent import SamplingParams
from agent.runtime import Model
from agent.structured import StructuredResult, extraction_messages, generate_structured


def extract_without_and_with_drafts(
    model: Model, text: str, schema: dict[str, Any], max_tokens: int
) -> list[StructuredResult]:
    """Greedy extractions of `text` with `lookup` 0 and 8, each from an empty cache."""
    messages = extraction_messages(text, schema)
    results = []
    for lookup in (0, 8):
        model.reset_cache()
        results.append(
            generate_structured(
                model,
                messages,
                schema,
                max_tokens=max_tokens,
                sampling=SamplingParams(temperature=0.0),
                lookup=lookup,
            )
        )
    return results
