"""What a status bar shows about a model, whatever engine runs it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelInfo:
    """Facts about a model: local weights, or a server's model (sizes then unknown: 0)."""

    name: str
    path: str
    model_type: str
    quantization: str
    parameters: int
    weight_bytes: int
    context_length: int
    vocab_size: int
    engine: str = ""  # "mlx", "llama.cpp", "openai", "scripted"
