"""edge-agent: an agent framework for small on-device models (MLX)."""

from __future__ import annotations

from agent.errors import EdgeAgentError, ModelNotFoundError, ModelUnavailableError, UserError
from agent.loader import load_model
from agent.models.registry import BUILTIN_MODELS, DEFAULT_MODEL
from agent.runtime import GenerationResult, Model, ModelInfo, TextChunk
from agent.sampling import SamplingParams
from agent.stats import GenerationStats

__all__ = [
    "BUILTIN_MODELS",
    "DEFAULT_MODEL",
    "EdgeAgentError",
    "GenerationResult",
    "GenerationStats",
    "Model",
    "ModelInfo",
    "ModelNotFoundError",
    "ModelUnavailableError",
    "SamplingParams",
    "TextChunk",
    "UserError",
    "load_model",
]
