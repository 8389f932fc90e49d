"""Sampling settings and the mlx-lm sampler/processors they turn into."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from agent.errors import UserError

if TYPE_CHECKING:
    import mlx.core as mx

# (history, logits) -> logits, on MLX arrays; MLX loads only where a sampler is built.
LogitsProcessor = Callable[[Any, Any], Any]


# llama.cpp takes a 32-bit seed; one range for every engine keeps a seed reproducible.
MAX_SEED = 2**32 - 1


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
        for name in ("temperature", "top_p", "min_p", "repetition_penalty"):
            value = getattr(self, name)
            # NaN passes every comparison below, and NaN logits let the sampler pick a
            # token the grammar forbids: refuse it (and infinity) by name.
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise UserError(f"{name} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise UserError(f"{name} must be a finite number, got {value}")
        if self.seed is not None and (
            isinstance(self.seed, bool)
            or not isinstance(self.seed, int)
            or not 0 <= self.seed <= MAX_SEED
        ):
            raise UserError(f"seed must be a whole number from 0 to {MAX_SEED}, got {self.seed!r}")
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
    def from_generation_config(cls, config: dict) -> SamplingParams:
        """Defaults from a model's generation_config.json (Hugging Face key names)."""
        fields = {
            "temperature": "temperature",
            "top_p": "top_p",
            "min_p": "min_p",
            "top_k": "top_k",
            "repetition_penalty": "repetition_penalty",
        }
        values = {
            ours: config[theirs]
            for theirs, ours in fields.items()
            if isinstance(config.get(theirs), (int, float)) and not isinstance(config[theirs], bool)
        }
        if config.get("do_sample") is False:
            values.update(temperature=0.0)
        base = cls()
        if values and "min_p" not in values:
            values["min_p"] = 0.0  # a model that names its sampling does not ask for min_p
        if values and "repetition_penalty" not in values:
            values["repetition_penalty"] = 1.0
        return replace(base, **values)

    def with_overrides(self, **overrides: float | int | None) -> SamplingParams:
        """A copy with the given fields replaced; None means keep."""
        # Numbers by field name (ints and floats alike); __post_init__ checks their ranges.
        kept: dict[str, Any] = {k: v for k, v in overrides.items() if v is not None}
        return replace(self, **kept)

    @classmethod
    def greedy(cls) -> SamplingParams:
        return cls(temperature=0.0, min_p=0.0, repetition_penalty=1.0)

    def sampler(self) -> Callable[[mx.array], mx.array]:
        from mlx_lm.sample_utils import make_sampler

        return make_sampler(
            temp=self.temperature,
            top_p=self.top_p if self.top_p < 1 else 0.0,
            min_p=self.min_p,
            top_k=self.top_k,
        )

    def logits_processors(self) -> list[LogitsProcessor]:
        if self.repetition_penalty == 1.0:
            return []
        from mlx_lm.sample_utils import make_repetition_penalty

        return [make_repetition_penalty(self.repetition_penalty, self.repetition_context_size)]
