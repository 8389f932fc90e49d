"""Sampling settings and the mlx-lm sampler/processors they turn into."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import mlx.core as mx
from mlx_lm.sample_utils import make_repetition_penalty, make_sampler

from agent.errors import UserError

LogitsProcessor = Callable[[mx.array, mx.array], mx.array]


@dataclass(frozen=True)
class SamplingParams:
    """How the next token is drawn. Defaults are LiquidAI's recommendation for LFM2."""

    temperature: float = 0.3
    top_p: float = 1.0
    min_p: float = 0.15
    top_k: int = 0
    repetition_penalty: float = 1.05
    repetition_context_size: int = 64
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise UserError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise UserError(f"top_p must be in (0, 1], got {self.top_p}")
        if not 0 <= self.min_p < 1:
            raise UserError(f"min_p must be in [0, 1), got {self.min_p}")
        if self.top_k < 0:
            raise UserError(f"top_k must be >= 0, got {self.top_k}")
        if self.repetition_penalty <= 0:
            raise UserError(f"repetition_penalty must be > 0, got {self.repetition_penalty}")

    @classmethod
    def greedy(cls) -> SamplingParams:
        return cls(temperature=0.0, min_p=0.0, repetition_penalty=1.0)

    def sampler(self) -> Callable[[mx.array], mx.array]:
        return make_sampler(
            temp=self.temperature,
            top_p=self.top_p if self.top_p < 1 else 0.0,
            min_p=self.min_p,
            top_k=self.top_k,
        )

    def logits_processors(self) -> list[LogitsProcessor]:
        if self.repetition_penalty == 1.0:
            return []
        return [make_repetition_penalty(self.repetition_penalty, self.repetition_context_size)]
