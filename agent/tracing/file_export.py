"""A span exporter that writes one JSON object a line (`--trace FILE`).

Each line is the SDK's own `ReadableSpan.to_json()` compacted, so the fields are the
ones OpenTelemetry documents (`name`, `context`, `parent_id`, `attributes`, `status`)
and a line can be read back without knowing edge-agent.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from agent.errors import UserError


def _open_trace_file(path: str | os.PathLike[str]) -> TextIO:
    target = Path(path)
    if target.is_dir():
        raise UserError(f"--trace {target}: is a directory; give a file path")
    if not target.parent.is_dir():
        raise UserError(
            f"--trace {target}: the directory {target.parent} does not exist; create it first"
        )
    try:
        return target.open("w", encoding="utf-8")
    except OSError as exc:
        raise UserError(f"--trace {target}: cannot write ({exc.strerror})") from None


class JsonLinesSpanExporter(SpanExporter):
    """Every finished span as one line: the SDK's `ReadableSpan.to_json()`, compacted."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._out = _open_trace_file(path)
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = [json.dumps(json.loads(s.to_json()), separators=(",", ":")) for s in spans]
        with self._lock:
            if self._out.closed:
                return SpanExportResult.FAILURE
            self._out.write("".join(line + "\n" for line in lines))
            self._out.flush()
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        with self._lock:
            self._out.close()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
