"""Numbers a user cares about for one generation call."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class GenerationStats:
    """Counts and rates of one call; rates are 0.0 when there was nothing to time."""

    prompt_tokens: int = 0
    cached_prompt_tokens: int = 0
    generated_tokens: int = 0
    ttft_s: float = 0.0
    prefill_tps: float = 0.0
    decode_tps: float = 0.0
    total_s: float = 0.0
    peak_memory_bytes: int = 0
    finish_reason: str = ""
    engine: str = ""  # what ran the model: "mlx", "llama.cpp", "openai", "scripted"
    # Constrained decoding (zero when the call was not constrained).
    constrained: bool = False
    compile_ms: float = 0.0
    compile_cached: bool = False
    grammar_engine: str = ""  # "llguidance" or "regex"
    mask_us_per_token: float = 0.0
    forced_tokens: int = 0
    # Model calls after the prefill: fewer than the generated tokens when forced runs
    # of tokens were fast-forwarded in one pass each.
    decode_forward_passes: int = 0
    # Prompt lookup (`agent.prompt_lookup`): tokens guessed from earlier text and fed
    # ahead of time, and how many of them were what the model then took.
    draft_tokens: int = 0
    accepted_draft_tokens: int = 0

    @property
    def prefilled_tokens(self) -> int:
        return self.prompt_tokens - self.cached_prompt_tokens

    @property
    def forced_fraction(self) -> float:
        return self.forced_tokens / self.generated_tokens if self.generated_tokens else 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["prefilled_tokens"] = self.prefilled_tokens
        data["forced_fraction"] = round(self.forced_fraction, 4)
        return data

    def summary(self) -> str:
        """One line for a terminal."""
        parts = [
            *([f"engine {self.engine}"] if self.engine else []),
            f"prompt {self.prompt_tokens} tok ({self.cached_prompt_tokens} cached)",
            f"generated {self.generated_tokens} tok",
            f"TTFT {self.ttft_s * 1000:.0f} ms",
            f"prefill {self.prefill_tps:.1f} tok/s",
            f"decode {self.decode_tps:.1f} tok/s",
            f"peak {self.peak_memory_bytes / 2**20:.0f} MiB",
        ]
        if self.constrained:
            engine = self.grammar_engine or "grammar"
            parts.append(
                f"grammar compile {self.compile_ms:.1f} ms ({engine}"
                f"{', cached' if self.compile_cached else ''}), "
                f"mask {self.mask_us_per_token:.0f} µs/tok, "
                f"forced {self.forced_fraction:.0%}"
            )
        if self.draft_tokens:
            parts.append(
                f"lookup {self.accepted_draft_tokens}/{self.draft_tokens} drafted tokens taken"
            )
        parts.append(f"stop: {self.finish_reason}")
        return " | ".join(parts)
