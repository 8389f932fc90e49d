"""edge-agent: an agent framework for small on-device models (MLX)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from agent.errors import EdgeAgentError, ModelNotFoundError, ModelUnavailableError, UserError
from agent.loader import load_model
from agent.models.registry import BUILTIN_MODELS, DEFAULT_MODEL
from agent.runtime import GenerationResult, Model, ModelInfo, TextChunk
from agent.sampling import SamplingParams
from agent.stats import GenerationStats

# Heavier parts load on first use: `schemas` imports `agent.errors`, and the CLI should
# not pay for the grammar machinery when it only generates text.
_LAZY = {
    "Agent": "agent.agent",
    "RunResult": "agent.agent",
    "Session": "agent.sessions",
    "SessionStore": "agent.sessions",
    "Regex": "agent.constrained.output_types",
    "BudgetTooSmallError": "agent.structured",
    "GenerationIncomplete": "agent.structured",
    "StructuredResult": "agent.structured",
    "extract": "agent.structured",
    "extract_with_stats": "agent.structured",
    "generate_structured": "agent.structured",
    "stream_structured": "agent.structured",
}

if TYPE_CHECKING:
    from agent.agent import Agent, RunResult
    from agent.constrained.output_types import Regex
    from agent.sessions import Session, SessionStore
    from agent.structured import (
        BudgetTooSmallError,
        GenerationIncomplete,
        StructuredResult,
        extract,
        extract_with_stats,
        generate_structured,
        stream_structured,
    )


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'agent' has no attribute '{name}'")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "BUILTIN_MODELS",
    "DEFAULT_MODEL",
    "Agent",
    "BudgetTooSmallError",
    "EdgeAgentError",
    "GenerationIncomplete",
    "GenerationResult",
    "GenerationStats",
    "Model",
    "ModelInfo",
    "ModelNotFoundError",
    "ModelUnavailableError",
    "Regex",
    "RunResult",
    "SamplingParams",
    "Session",
    "SessionStore",
    "StructuredResult",
    "TextChunk",
    "UserError",
    "extract",
    "extract_with_stats",
    "generate_structured",
    "load_model",
    "stream_structured",
]
