"""edge-agent: an agent framework for small on-device models (MLX)."""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

from agent import fastpath
from agent.errors import EdgeAgentError, ModelNotFoundError, ModelUnavailableError, UserError

# Before anything imports MLX: a fast BLAS (MKL), when installed, must be in the process
# before `mlx.core` so that its `cblas_*` symbols win (see agent/fastpath.py). Cheap; it
# loads no MLX itself.
fastpath.preload_blas()
# The iri checkers of jsonschema's format-nongpl extra build a lark grammar at import
# (seconds); they load on their first use instead.
fastpath.defer_iri_checkers()
# Quiet unless the application configures logging (the CLI: --verbose, EDGE_AGENT_LOG).
logging.getLogger(__name__).addHandler(logging.NullHandler())

# Everything else loads on first use, so `import agent` (and `edge-agent --help`) pays
# for neither MLX nor mlx-lm nor the grammar machinery.
_LAZY = {
    "load_model": "agent.loader",
    "BUILTIN_MODELS": "agent.models.registry",
    "DEFAULT_MODEL": "agent.models.registry",
    "GenerationResult": "agent.runtime",
    "Model": "agent.runtime",
    "ModelInfo": "agent.model_info",
    "TextChunk": "agent.runtime",
    "SamplingParams": "agent.sampling",
    "GenerationStats": "agent.stats",
    "Agent": "agent.agent",
    "RunResult": "agent.agent",
    "Session": "agent.sessions",
    "SystemMessage": "agent.messages",
    "UserMessage": "agent.messages",
    "AssistantMessage": "agent.messages",
    "ToolMessage": "agent.messages",
    "MessageError": "agent.messages",
    "message_from_dict": "agent.messages",
    "SessionStore": "agent.sessions",
    "CFG": "agent.constrained.output_types",
    "Regex": "agent.constrained.output_types",
    "BudgetTooSmallError": "agent.structured",
    "GenerationIncomplete": "agent.structured",
    "StructuredResult": "agent.structured",
    "extract": "agent.extraction",
    "extract_with_stats": "agent.extraction",
    "extract_many": "agent.docextract",
    "DocumentResult": "agent.docextract",
    "Text": "agent.docextract",
    "generate_structured": "agent.structured",
    "stream_structured": "agent.structured",
}

if TYPE_CHECKING:
    from agent.agent import Agent, RunResult
    from agent.constrained.output_types import CFG, Regex
    from agent.docextract import DocumentResult, Text, extract_many
    from agent.extraction import extract, extract_with_stats
    from agent.loader import load_model
    from agent.messages import (
        AssistantMessage,
        MessageError,
        SystemMessage,
        ToolMessage,
        UserMessage,
        message_from_dict,
    )
    from agent.model_info import ModelInfo
    from agent.models.registry import BUILTIN_MODELS, DEFAULT_MODEL
    from agent.runtime import GenerationResult, Model, TextChunk
    from agent.sampling import SamplingParams
    from agent.sessions import Session, SessionStore
    from agent.stats import GenerationStats
    from agent.structured import (
        BudgetTooSmallError,
        GenerationIncomplete,
        StructuredResult,
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
    "CFG",
    "DEFAULT_MODEL",
    "Agent",
    "AssistantMessage",
    "BudgetTooSmallError",
    "DocumentResult",
    "EdgeAgentError",
    "GenerationIncomplete",
    "GenerationResult",
    "GenerationStats",
    "MessageError",
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
    "SystemMessage",
    "Text",
    "TextChunk",
    "ToolMessage",
    "UserError",
    "UserMessage",
    "extract",
    "extract_many",
    "extract_with_stats",
    "generate_structured",
    "load_model",
    "message_from_dict",
    "stream_structured",
]
