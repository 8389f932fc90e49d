"""The JSONL results file: one record per document, written as each one finishes.

Each line is flushed when written, so an interrupted run (Ctrl+C, a kill) keeps every
finished document. A rerun with the same file keeps the documents that succeeded and
skips them; failed ones and a line cut off by a kill are dropped and done again.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from agent.errors import UserError


def read_done(path: Path) -> list[dict[str, Any]]:
    """The successful records of an earlier run (none when the file does not exist)."""
    if not path.exists():
        return []
    if not path.is_file():
        raise UserError(f"--out '{path}' is not a regular file")
    records = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read --out '{path}' to resume: {exc}") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines):  # cut off by a kill: done again
                continue
            raise UserError(
                f"--out '{path}' line {number} is not JSON; it is not a results file of "
                "`edge-agent extract` (choose another --out)"
            ) from None
        if not isinstance(record, dict) or "source" not in record:
            raise UserError(f"--out '{path}' line {number} has no 'source'; choose another --out")
        if record.get("error") is None:
            records.append(record)
    return records


@contextmanager
def results_file(path: Path, kept: list[dict[str, Any]]) -> Iterator[IO[str]]:
    """`path` rewritten with the `kept` records, open for appending more."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with tmp.open("w", encoding="utf-8") as f:
            for record in kept:
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
        os.replace(tmp, path)
        handle = path.open("a", encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot write --out '{path}': {exc.strerror or exc}") from None
    try:
        yield handle
    finally:
        handle.close()


def write_record(handle: IO[str], record: dict[str, Any]) -> None:
    handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    handle.flush()
