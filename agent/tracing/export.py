"""SDK providers for `configure()` and the CLI: spans to a JSON-lines file or OTLP.

Only this module imports `opentelemetry-sdk` (the `edge-agent[otel]` extra); without it
asking for a trace is one line naming the install command, never a traceback.
"""

from __future__ import annotations

import os
from typing import Any

from agent.errors import UserError
from agent.tracing import INSTALL_HINT, SCOPE, Tracing

ENDPOINT_ENVS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
TIMEOUT_ENVS = (
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
    "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT",
)
# Retries to an unreachable collector stop after this (the SDK's default is 10 s per
# exporter), so a command ends soon after its work; OTEL_EXPORTER_OTLP_TIMEOUT wins.
EXPORT_TIMEOUT_S = 4.0


def endpoint_from_env() -> bool:
    """Whether the standard variables name an OTLP collector."""
    return any(os.environ.get(name, "").strip() for name in ENDPOINT_ENVS)


def sdk_available() -> bool:
    try:
        import opentelemetry.sdk.trace  # noqa: F401
    except ImportError:
        return False
    return True


def build_tracing(
    file: str | os.PathLike[str] | None = None,
    endpoint: str | None = None,
    *,
    capture_content: bool | None = None,
    what: str = "tracing",
) -> Tracing:
    """Providers that export to `file` and/or `endpoint` (or the OTLP variables)."""
    if not sdk_available():
        raise UserError(f"{what} needs the OpenTelemetry SDK: {INSTALL_HINT}")
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": SCOPE}
    resource = Resource.create(attributes)
    tracer_provider = TracerProvider(resource=resource)
    meter_provider = None
    if file is not None:
        from agent.tracing.file_export import JsonLinesSpanExporter

        tracer_provider.add_span_processor(SimpleSpanProcessor(JsonLinesSpanExporter(file)))
    if endpoint is not None or (file is None and endpoint_from_env()):
        span_exporter, metric_exporter = _otlp_exporters(endpoint)
        tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter))
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

        reader = PeriodicExportingMetricReader(metric_exporter)
        meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    return Tracing(tracer_provider, meter_provider, capture_content)


def _otlp_exporters(endpoint: str | None) -> tuple[Any, Any]:
    try:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError:
        raise UserError(f"an OTLP endpoint needs the OTLP exporter: {INSTALL_HINT}") from None
    timeout = None if any(os.environ.get(name) for name in TIMEOUT_ENVS) else EXPORT_TIMEOUT_S
    if endpoint is None:  # the exporters read OTEL_EXPORTER_OTLP_* themselves
        return OTLPSpanExporter(timeout=timeout), OTLPMetricExporter(timeout=timeout)
    if not endpoint.startswith(("http://", "https://")):
        raise UserError(f"the OTLP endpoint must be an http(s) URL, got '{endpoint}'")
    base = endpoint.rstrip("/")
    return (
        OTLPSpanExporter(endpoint=f"{base}/v1/traces", timeout=timeout),
        OTLPMetricExporter(endpoint=f"{base}/v1/metrics", timeout=timeout),
    )
