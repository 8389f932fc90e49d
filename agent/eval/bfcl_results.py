"""The results file of a BFCL run: one JSON object a line, one line per case.

    {"id": "<BFCL id>", "calls": [{"name": str, "arguments": {...}}], "raw": str,
     "latency_s": float, "output_tokens": int}

`calls` is `[]` when the model made no call or its output did not parse; `raw` keeps the
model's text so a failure can be inspected later. Scoring needs only `id` and `calls`;
the other fields are checked when present so a broken runner is caught early.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.errors import UserError


@dataclass(frozen=True)
class ResultRecord:
    """What a runner recorded for one case."""

    id: str
    calls: list[dict[str, Any]] = field(default_factory=list)
    raw: str = ""
    latency_s: float | None = None
    output_tokens: int | None = None

    def to_json(self) -> str:
        """The record as one line of a results file (without the newline)."""
        record: dict[str, Any] = {"id": self.id, "calls": self.calls, "raw": self.raw}
        if self.latency_s is not None:
            record["latency_s"] = self.latency_s
        if self.output_tokens is not None:
            record["output_tokens"] = self.output_tokens
        return json.dumps(record, ensure_ascii=False)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def parse_record(line: str, where: str) -> ResultRecord:
    """One results line; UserError (naming `where`) when it is not a valid record."""
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise UserError(f"{where}: not JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(data, dict):
        raise UserError(f"{where}: expected a JSON object, got {type(data).__name__}")
    case_id, calls = data.get("id"), data.get("calls")
    if not isinstance(case_id, str) or not case_id:
        raise UserError(f"{where}: 'id' must be a non-empty string")
    if not isinstance(calls, list):
        raise UserError(f"{where}: 'calls' must be a list ([] when no call was made)")
    for n, call in enumerate(calls):
        if (
            not isinstance(call, dict)
            or not isinstance(call.get("name"), str)
            or not isinstance(call.get("arguments"), dict)
        ):
            raise UserError(f'{where}: calls[{n}] must be {{"name": string, "arguments": object}}')
    raw = data.get("raw", "")
    if not isinstance(raw, str):
        raise UserError(f"{where}: 'raw' must be a string")
    latency = data.get("latency_s")
    if latency is not None and not _number(latency):
        raise UserError(f"{where}: 'latency_s' must be a number")
    tokens = data.get("output_tokens")
    if tokens is not None and (not isinstance(tokens, int) or isinstance(tokens, bool)):
        raise UserError(f"{where}: 'output_tokens' must be a whole number")
    return ResultRecord(case_id, calls, raw, latency, tokens)


def read_results(path: str | os.PathLike[str]) -> list[ResultRecord]:
    """Every record of a results file, in file order (blank lines are skipped)."""
    p = Path(path).expanduser()
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"results file '{path}' does not exist") from None
    except IsADirectoryError:
        raise UserError(f"results file '{path}' is a directory, expected a file") from None
    except UnicodeDecodeError:
        raise UserError(f"results file '{path}' is not UTF-8 text") from None
    except OSError as exc:
        raise UserError(f"cannot read results file '{path}': {exc.strerror}") from None
    return [
        parse_record(line, f"{path}:{number}")
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip()
    ]
