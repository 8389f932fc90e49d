"""Grammar-constrained decoding: compile an output type to a token automaton, mask with MLX.

The mask is applied with plain MLX operations (`mx.where` over the logits), never a Metal
kernel, so constrained decoding runs on CPU, CUDA and Metal alike.
"""

from __future__ import annotations

from agent.constrained.compile import DEFAULT_COMPILE_TIMEOUT, GrammarCompileTimeout, compile_regex
from agent.constrained.constraint import GrammarConstraint
from agent.constrained.grammar import CompiledGrammar
from agent.constrained.output_types import OutputSpec, Regex, resolve_output_type
from agent.constrained.vocabulary import GrammarVocabulary

__all__ = [
    "DEFAULT_COMPILE_TIMEOUT",
    "CompiledGrammar",
    "GrammarCompileTimeout",
    "GrammarConstraint",
    "GrammarVocabulary",
    "OutputSpec",
    "Regex",
    "compile_regex",
    "resolve_output_type",
]
