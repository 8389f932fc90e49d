"""The GenAI conventions' client metrics: token usage and operation duration.

`gen_ai.client.token.usage` (one record per step and token type) and
`gen_ai.client.operation.duration` (per step, `chat`, and per run, `invoke_agent`) are
histograms, with the bucket boundaries the conventions advise.
"""

from __future__ import annotations

from typing import Any

from agent.stats import GenerationStats

TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304)
DURATION_BUCKETS = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)  # fmt: skip


class GenAIMetrics:
    """The two histograms on one meter (no-ops until an SDK meter provider is set)."""

    def __init__(self, meter: Any) -> None:
        self.tokens = meter.create_histogram(
            "gen_ai.client.token.usage",
            unit="{token}",
            description="Number of input and output tokens used",
            explicit_bucket_boundaries_advisory=list(TOKEN_BUCKETS),
        )
        self.duration = meter.create_histogram(
            "gen_ai.client.operation.duration",
            unit="s",
            description="GenAI operation duration",
            explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS),
        )

    def record_chat(
        self, stats: GenerationStats, provider: str, model: str, duration_s: float
    ) -> None:
        base = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": provider,
            "gen_ai.request.model": model,
        }
        self.tokens.record(stats.prompt_tokens, {**base, "gen_ai.token.type": "input"})
        self.tokens.record(stats.generated_tokens, {**base, "gen_ai.token.type": "output"})
        self.duration.record(duration_s, base)

    def record_agent(
        self, provider: str, model: str, duration_s: float, stopped_by: str | None
    ) -> None:
        attributes = {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.provider.name": provider,
            "gen_ai.request.model": model,
        }
        if stopped_by == "error":
            attributes["error.type"] = "run_error"
        self.duration.record(duration_s, attributes)
