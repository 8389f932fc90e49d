"""Grammar-constrained decoding: compile an output type to a grammar, mask with MLX.

Two engines sit behind one interface (`engine.Grammar`, `engine.Constraint`): llguidance
by default, the regex engine (an outlines-core automaton) where llguidance refuses a
request. Masks are applied with plain MLX operations (`mx.where` over the logits), never a
Metal kernel, so constrained decoding runs on CPU, CUDA and Metal alike.
"""

from __future__ import annotations

from agent.constrained.compile import DEFAULT_COMPILE_TIMEOUT, GrammarCompileTimeout
from agent.constrained.engine import Constraint, EngineName, Grammar
from agent.constrained.output_types import OutputSpec, Regex, resolve_output_type
from agent.constrained.select import ENGINE_CHOICES, CompiledOutput, EngineChoice, compile_output
from agent.constrained.target import GrammarTarget, target_for

__all__ = [
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
