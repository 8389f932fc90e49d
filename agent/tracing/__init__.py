"""OpenTelemetry traces and metrics of agent runs, in the GenAI semantic conventions.

Instrumentation uses `opentelemetry-api` only: until an SDK is configured every span is
a no-op, so tracing costs nothing when it is off. `Tracing` says where spans and metrics
go: explicit providers (a test's in-memory exporter, the CLI's `--trace FILE`), or, by
default, the global ones, so a program that already set up OpenTelemetry (Logfire,
Phoenix, Langfuse) sees edge-agent's spans as they are. `configure()` builds SDK
providers (the `edge-agent[otel]` extra) that write to a file or an OTLP endpoint.

Prompt text, tool arguments and results are recorded only when content capture is on
(`capture_content=True`, `--trace-content`, or the convention's environment variable
`OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.metrics import Meter
    from opentelemetry.trace import Tracer

CAPTURE_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
SCOPE = "edge-agent"
INSTALL_HINT = "pip install 'edge-agent[otel]'"


def capture_from_env() -> bool:
    return os.environ.get(CAPTURE_ENV, "").strip().lower() in ("1", "true", "yes")


@dataclass
class Tracing:
    """Where an agent's spans and metrics go, and whether they carry message content.

    None for a provider means the global one (set by `configure()` or by the program),
    looked up at each run so a provider configured later is still used.
    """

    tracer_provider: Any = None
    meter_provider: Any = None
    capture_content: bool | None = None  # None: the environment variable decides

    def tracer(self) -> Tracer:
        from opentelemetry import trace

        return trace.get_tracer(SCOPE, tracer_provider=self.tracer_provider)

    def meter(self) -> Meter:
        from opentelemetry import metrics

        return metrics.get_meter(SCOPE, meter_provider=self.meter_provider)

    @property
    def content(self) -> bool:
        return capture_from_env() if self.capture_content is None else self.capture_content

    def shutdown(self) -> None:
        """Flush and close the providers this object owns (the CLI's, `configure()`'s)."""
        for provider in (self.tracer_provider, self.meter_provider):
            shutdown = getattr(provider, "shutdown", None)
            if callable(shutdown):
                shutdown()


def configure(
    file: str | os.PathLike[str] | None = None,
    endpoint: str | None = None,
    *,
    capture_content: bool | None = None,
    set_global: bool = True,
) -> Tracing:
    """Send spans to `file` (one JSON span a line) and/or an OTLP/HTTP `endpoint`
    (`http://host:4318`; metrics go there too). With neither, the standard
    `OTEL_EXPORTER_OTLP_*` variables name the collector. Needs `edge-agent[otel]`.

    `set_global=True` installs the providers as OpenTelemetry's global ones, so every
    `Agent` created afterwards reports to them (OpenTelemetry allows this once per
    process); otherwise pass the result as `Agent(..., tracing=...)`.
    """
    from agent.tracing.export import build_tracing

    tracing = build_tracing(file=file, endpoint=endpoint, capture_content=capture_content)
    if set_global:
        from opentelemetry import metrics, trace

        trace.set_tracer_provider(tracing.tracer_provider)
        if tracing.meter_provider is not None:
            metrics.set_meter_provider(tracing.meter_provider)
    return tracing


__all__ = ["CAPTURE_ENV", "INSTALL_HINT", "Tracing", "capture_from_env", "configure"]
