"""The report of a BFCL run: a table per category and mode, `summary.json` and a chart.

Each row covers the run's selected cases that its results file holds (a resumed or
partial run reports what is done; cases of an earlier, larger run in the same file are
left out, so modes are always compared on the same cases):

- accuracy: BFCL's AST verdict (`bfcl_score`);
- valid: the share of outputs whose calls parse and validate against the functions'
  JSON Schema (`bfcl_validity`), which the grammar guarantees in constrained mode;
- median latency: seconds from the request to the last token, prompt included;
- tokens per call: the mean tokens generated per case (one model call each).

The chart needs matplotlib (the `eval` extra); without it the report says so and the
rest is written as usual.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from agent.eval.bfcl_data import BfclCase
from agent.eval.bfcl_results import ResultRecord
from agent.eval.bfcl_score import score_records
from agent.eval.bfcl_validity import CaseValidator

SUMMARY_FILE = "summary.json"
CHART_FILE = "accuracy.png"
MODE_COLORS = {"constrained": "#1f77b4", "free": "#ff7f0e", "baseline": "#7f7f7f"}


@dataclass(frozen=True)
class Row:
    """One category in one mode."""

    category: str
    mode: str
    cases: int
    correct: int
    valid: int
    median_latency_s: float | None
    tokens_per_call: float | None
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def accuracy(self) -> float:
        return self.correct / self.cases if self.cases else 0.0

    @property
    def valid_share(self) -> float:
        return self.valid / self.cases if self.cases else 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["accuracy"] = round(self.accuracy, 4)
        data["valid_share"] = round(self.valid_share, 4)
        return data


def summarize(
    category: str, mode: str, cases: Sequence[BfclCase], records: Sequence[ResultRecord]
) -> Row:
    """The row of one results file, over the `cases` selected (see the module)."""
    wanted = {case.id for case in cases}
    kept = [r for r in records if r.id in wanted]
    by_id = {case.id: case for case in cases}
    report = score_records(kept, cases, category)
    valid = sum(CaseValidator(by_id[r.id]).output_valid(r.calls) for r in kept)
    latencies = [r.latency_s for r in kept if r.latency_s is not None]
    tokens = [r.output_tokens for r in kept if r.output_tokens is not None]
    return Row(
        category,
        mode,
        len(kept),
        report.correct,
        valid,
        round(statistics.median(latencies), 4) if latencies else None,
        round(statistics.fmean(tokens), 2) if tokens else None,
        report.error_counts(),
    )


@dataclass
class Report:
    """Every row of a run, and what the run was."""

    rows: list[Row]
    settings: dict[str, Any] = field(default_factory=dict)

    def mean_accuracy(self, mode: str) -> float | None:
        """The unweighted mean over categories, as BFCL averages its categories."""
        values = [r.accuracy for r in self.rows if r.mode == mode and r.cases]
        return round(statistics.fmean(values), 4) if values else None

    def to_dict(self) -> dict[str, Any]:
        modes = list(dict.fromkeys(r.mode for r in self.rows))
        return {
            "settings": self.settings,
            "rows": [r.to_dict() for r in self.rows],
            "mean_accuracy": {m: self.mean_accuracy(m) for m in modes},
        }

    def table(self) -> str:
        """A plain-text table (also valid Markdown)."""
        head = ["category", "mode", "cases", "accuracy", "valid", "median s", "tokens/call"]
        lines = [head]
        for r in self.rows:
            lines.append(
                [
                    r.category,
                    r.mode,
                    str(r.cases),
                    f"{100 * r.accuracy:.1f}%",
                    f"{100 * r.valid_share:.1f}%",
                    "-" if r.median_latency_s is None else f"{r.median_latency_s:.2f}",
                    "-" if r.tokens_per_call is None else f"{r.tokens_per_call:.1f}",
                ]
            )
        widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
        right = {2, 3, 4, 5, 6}

        def fmt(cells: list[str]) -> str:
            padded = [
                c.rjust(widths[i]) if i in right else c.ljust(widths[i])
                for i, c in enumerate(cells)
            ]
            return "| " + " | ".join(padded) + " |"

        rule = "|" + "|".join(
            "-" * (w + 1) + ":" if i in right else "-" * (w + 2) for i, w in enumerate(widths)
        ) + "|"  # fmt: skip
        out = [fmt(lines[0]), rule, *(fmt(cells) for cells in lines[1:])]
        for mode in dict.fromkeys(r.mode for r in self.rows):
            mean = self.mean_accuracy(mode)
            if mean is not None:
                out.append(f"mean accuracy over categories, {mode}: {100 * mean:.1f}%")
        return "\n".join(out)

    def write_summary(self, out_dir: Path) -> Path:
        path = out_dir / SUMMARY_FILE
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return path

    def write_chart(self, out_dir: Path) -> Path:
        """A bar chart of accuracy by category, one bar per mode side by side.

        Raises ImportError (with how to install it) when matplotlib is missing.
        """
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            raise ImportError(
                "the chart needs matplotlib: pip install 'edge-agent[eval]' (or matplotlib)"
            ) from None
        categories = list(dict.fromkeys(r.category for r in self.rows))
        modes = list(dict.fromkeys(r.mode for r in self.rows))
        cells = {(r.category, r.mode): r for r in self.rows}
        width = 0.8 / max(len(modes), 1)
        fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(categories) + 2), 4.2))
        try:
            for k, mode in enumerate(modes):
                xs = [i + (k - (len(modes) - 1) / 2) * width for i in range(len(categories))]
                rows = [cells.get((c, mode)) for c in categories]
                heights = [100 * r.accuracy if r is not None else 0.0 for r in rows]
                bars = ax.bar(xs, heights, width, label=mode, color=MODE_COLORS.get(mode))
                for bar, height in zip(bars, heights, strict=True):
                    ax.annotate(
                        f"{height:.0f}",
                        (bar.get_x() + bar.get_width() / 2, height),
                        ha="center",
                        va="bottom",
                        fontsize=7,
                    )
            ax.set_xticks(range(len(categories)))
            ax.set_xticklabels(categories, rotation=30, ha="right", fontsize=8)
            ax.set_ylabel("accuracy (%)")
            ax.set_ylim(0, 105)
            model = self.settings.get("model", "")
            ax.set_title(f"BFCL accuracy by category: {model}".rstrip(": "), fontsize=10)
            ax.legend(fontsize=8)
            fig.tight_layout()
            path = out_dir / CHART_FILE
            fig.savefig(path, dpi=120)
        finally:
            plt.close(fig)
        return path


def build_report(
    jobs: Sequence[Any], selected: dict[str, list[BfclCase]], settings: dict[str, Any]
) -> Report:
    """The report of a run plan's jobs (each with `category`, `mode`, `results`)."""
    rows = [
        summarize(
            job.category, job.mode, selected[job.category], list(job.results.records.values())
        )
        for job in jobs
    ]
    return Report(rows, settings)
