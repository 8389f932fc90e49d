"""Grammar-constrained decoding: compile an output type to a grammar, mask with MLX.

Two engines sit behind one interface (`engine.Grammar`, `engine.Constraint`): llguidance
by default, the regex engine (an outlines-core automaton) where llguidance refuses a
request. Masks are applied with plain MLX operations, never a Metal kernel, so
constrained decoding runs on CPU, CUDA and Metal alike.

Names load on first use: the agent loop imports `output_types` without MLX.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from agent.constrained.defaults import DEFAULT_COMPILE_TIMEOUT

_LAZY = {
    "GrammarCompileTimeout": "agent.constrained.compile",
    "Constraint": "agent.constrained.engine",
    "EngineName": "agent.constrained.engine",
    "Grammar": "agent.constrained.engine",
    "OutputSpec": "agent.constrained.output_types",
    "CFG": "agent.constrained.output_types",
    "Regex": "agent.constrained.output_types",
    "resolve_output_type": "agent.constrained.output_types",
    "ENGINE_CHOICES": "agent.constrained.select",
    "CompiledOutput": "agent.constrained.select",
    "EngineChoice": "agent.constrained.select",
    "compile_output": "agent.constrained.select",
    "GrammarTarget": "agent.constrained.target",
    "target_for": "agent.constrained.target",
}

if TYPE_CHECKING:
    from agent.constrained.compile import GrammarCompileTimeout
    from agent.constrained.engine import Constraint, EngineName, Grammar
    from agent.constrained.output_types import CFG, OutputSpec, Regex, resolve_output_type
    from agent.constrained.select import (
        ENGINE_CHOICES,
        CompiledOutput,
        EngineChoice,
        compile_output,
    )
    from agent.constrained.target import GrammarTarget, target_for


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'agent.constrained' has no attribute '{name}'")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "CFG",
    "DEFAULT_COMPILE_TIMEOUT",
    "ENGINE_CHOICES",
    "CompiledOutput",
    "Constraint",
    "EngineChoice",
    "EngineName",
    "Grammar",
    "GrammarCompileTimeout",
    "GrammarTarget",
    "OutputSpec",
    "Regex",
    "compile_output",
    "resolve_output_type",
    "target_for",
]
