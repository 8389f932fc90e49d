"""Scoring a BFCL results file: one verdict per line, accuracy, counts per error type.

The report keeps the results file's order and one entry per line, so it can be joined
back to the file (and to `raw` outputs) by position as well as by id.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from agent.errors import UserError
from agent.eval.bfcl_checker import score_case
from agent.eval.bfcl_data import BfclCase, check_category, load_cases
from agent.eval.bfcl_results import ResultRecord, read_results


@dataclass(frozen=True)
class CaseScore:
    """The verdict on one line of a results file."""

    id: str
    valid: bool
    error_type: str | None = None
    error: str = ""


@dataclass(frozen=True)
class ScoreReport:
    """Accuracy of a results file on one category.

    `category_size` is how many cases the category has, so a partial run (fewer lines
    than cases) is visible rather than silently scored on a subset.
    """

    category: str
    cases: list[CaseScore] = field(default_factory=list)
    category_size: int = 0

    @property
    def total(self) -> int:
        return len(self.cases)

    @property
    def correct(self) -> int:
        return sum(case.valid for case in self.cases)

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0

    def error_counts(self) -> dict[str, int]:
        """Failures per BFCL error type, most frequent first."""
        counts = Counter(c.error_type or "unknown" for c in self.cases if not c.valid)
        return dict(counts.most_common())

    def to_dict(self) -> dict[str, Any]:
        """The `--json` form: category, total, correct, accuracy and one entry per line."""
        return {
            "category": self.category,
            "total": self.total,
            "correct": self.correct,
            "accuracy": self.accuracy,
            "cases": [
                {"id": c.id, "valid": c.valid, "error_type": c.error_type} for c in self.cases
            ],
        }

    def summary(self) -> str:
        """A few human-readable lines: accuracy, coverage, counts per error type."""
        lines = [
            f"BFCL {self.category}: {self.correct}/{self.total} correct, accuracy "
            f"{100 * self.accuracy:.2f}% (results cover {self.total} of "
            f"{self.category_size} cases)"
        ]
        counts = self.error_counts()
        if counts:
            width = max(len(name) for name in counts)
            lines.append("errors:")
            lines.extend(f"  {name:<{width}}  {count}" for name, count in counts.items())
        return "\n".join(lines)


def score_records(
    records: Sequence[ResultRecord], cases: Sequence[BfclCase], category: str, where: str = ""
) -> ScoreReport:
    """Score `records` against the `cases` of `category`.

    Raises UserError for an id that is not a case of the category (a results file of
    another category, most likely) or that appears twice (it would count twice).
    """
    by_id = {case.id: case for case in cases}
    seen: set[str] = set()
    scores = []
    prefix = f"{where}: " if where else ""
    for n, record in enumerate(records, start=1):
        case = by_id.get(record.id)
        if case is None:
            raise UserError(
                f"{prefix}record {n}: id '{record.id}' is not a case of category '{category}'"
            )
        if record.id in seen:
            raise UserError(f"{prefix}record {n}: id '{record.id}' appears more than once")
        seen.add(record.id)
        verdict = score_case(case, record.calls)
        scores.append(CaseScore(record.id, verdict.valid, verdict.error_type, verdict.error))
    return ScoreReport(category, scores, len(cases))


def score_file(
    path: str | os.PathLike[str],
    category: str,
    data_dir: str | os.PathLike[str] | None = None,
) -> ScoreReport:
    """Score a results file written by a BFCL runner, by BFCL's AST rules."""
    check_category(category)
    records = read_results(path)
    return score_records(records, load_cases(category, data_dir), category, str(path))
