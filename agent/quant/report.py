"""A comparison as people read quants: one table, bars in the terminal, a chart file.

The chart needs matplotlib (the `plot` extra), imported only when a chart is asked for.
"""

from __future__ import annotations

from pathlib import Path

from agent.errors import UserError
from agent.quant.compare import Comparison, ModelFigures

CHART_SUFFIXES = (".svg", ".png", ".pdf")
_BAR = 28


def size_text(n: int) -> str:
    if n >= 2**30:
        return f"{n / 2**30:.2f} GiB"
    if n >= 2**20:
        return f"{n / 2**20:.1f} MiB"
    return f"{n / 2**10:.0f} KiB"


def table(comparison: Comparison) -> str:
    """The comparison table: one row per model, one column per figure."""
    c = comparison
    contexts = list(c.settings.contexts)
    header = [
        "MODEL",
        "SIZE",
        "BITS/W",
        "PERPLEXITY",
        "PREFILL tok/s",
        "DECODE tok/s",
        "PEAK MEM",
        *[f"RAM@{ctx}" for ctx in contexts],
    ]
    rows = [header]
    for m in c.models:
        rows.append(
            [
                m.name,
                size_text(m.size_bytes),
                f"{m.bits_per_weight:.2f}",
                f"{m.perplexity:.3f} ± {m.perplexity_se:.3f}",
                f"{m.prefill_tps:.1f}",
                f"{m.decode_tps:.1f}",
                size_text(m.peak_memory_bytes),
                *[
                    size_text(v) if (v := m.ram_plan.get(ctx)) is not None else "over max"
                    for ctx in contexts
                ],
            ]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = [
        f"Perplexity on {c.corpus}: the same {c.evaluated_tokens} tokens for every model "
        f"({c.windows} window(s) of {c.sequence_length}); speed: {c.settings.prompt_tokens} "
        f"prompt + {c.settings.generation_tokens} generated tokens; RAM@N: memory plan at N "
        "tokens of context"
    ]
    for r in rows:
        cells = [r[0].ljust(widths[0])] + [
            v.rjust(w) for v, w in zip(r[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    ran = dict.fromkeys(m.perplexity_weights for m in c.models if m.perplexity_weights)
    if ran:
        lines.append(f"perplexity computed with: {'; '.join(ran)}")
    return "\n".join(lines)


def bars(comparison: Comparison) -> str:
    """Horizontal bars per figure, so the quants can be compared by eye in a terminal."""
    models = comparison.models
    width = max(len(m.name) for m in models)
    out: list[str] = []
    figures: list[tuple[str, list[float], str]] = [
        ("perplexity (lower is better)", [m.perplexity for m in models], "{:.2f}"),
        ("decode tok/s (higher is better)", [m.decode_tps for m in models], "{:.1f}"),
        ("size on disk (MiB)", [m.size_bytes / 2**20 for m in models], "{:.1f}"),
    ]
    for title, values, fmt in figures:
        out.append(title)
        top = max(values) or 1.0
        for m, v in zip(models, values, strict=True):
            n = max(0.0, v / top * _BAR)
            bar = "█" * int(n) + ("▌" if n - int(n) >= 0.5 else "")
            out.append(f"  {m.name.ljust(width)} {bar.ljust(_BAR + 1)} {fmt.format(v)}")
    return "\n".join(out)


def check_chart_path(path: Path) -> None:
    if path.suffix.lower() not in CHART_SUFFIXES:
        raise UserError(
            f"--plot '{path}' must end in {', '.join(CHART_SUFFIXES)} (the chart's format)"
        )
    if not path.parent.is_dir():
        raise UserError(f"--plot '{path}': the directory {path.parent} does not exist")


def write_chart(comparison: Comparison, path: Path) -> Path:
    """Perplexity (with its standard error) against size and against decode speed.

    Raises UserError (with how to install it) when matplotlib is missing.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UserError(
            "the chart needs matplotlib: pip install 'edge-agent[plot]' (or matplotlib)"
        ) from None
    models: list[ModelFigures] = comparison.models
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2), sharey=True)
    try:
        ppl = [m.perplexity for m in models]
        se = [m.perplexity_se for m in models]
        for ax, xs, label in (
            (left, [m.size_bytes / 2**20 for m in models], "size on disk (MiB)"),
            (right, [m.decode_tps for m in models], "decode tokens/s"),
        ):
            ax.errorbar(xs, ppl, yerr=se, fmt="o", capsize=3)
            for m, x, y in zip(models, xs, ppl, strict=True):
                ax.annotate(
                    f"{m.name}\n{m.bits_per_weight:.2f} b/w",
                    (x, y),
                    textcoords="offset points",
                    xytext=(4, 4),
                    fontsize=7,
                )
            ax.set_xlabel(label)
            ax.grid(alpha=0.3)
        if max(ppl) > 2 * min(ppl):
            left.set_yscale("log")  # the mean loss, in effect: quants far apart stay readable
        left.set_ylabel("perplexity (lower is better)")
        fig.suptitle(
            f"Quants on {comparison.corpus} ({comparison.evaluated_tokens} tokens)", fontsize=10
        )
        fig.tight_layout()
        fig.savefig(path, dpi=120)
    finally:
        plt.close(fig)
    return path
