"""Small text formatters shared by the widgets (kept pure so tests can pin them)."""

from __future__ import annotations


def duration(seconds: float) -> str:
    if seconds < 1.0:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    return f"{int(seconds // 60)} min {seconds % 60:.0f} s"


def memory(n_bytes: int) -> str:
    if n_bytes <= 0:
        return "-"
    mib = n_bytes / 2**20
    return f"{mib:.0f} MiB" if mib < 1024 else f"{mib / 1024:.1f} GiB"


def rate(tokens_per_s: float) -> str:
    if tokens_per_s <= 0:
        return "-"
    return f"{tokens_per_s:.0f}" if tokens_per_s >= 10 else f"{tokens_per_s:.1f}"


def count(n: int) -> str:
    return f"{n / 1000:.1f}k" if n >= 10_000 else str(n)


def clip(text: str, max_lines: int, max_chars: int) -> str:
    """`text` cut to a preview, saying how much was left out."""
    lines = text.splitlines()
    kept = lines[:max_lines]
    out = "\n".join(kept)
    if len(out) > max_chars:
        out = out[:max_chars].rstrip() + "…"
    hidden = len(lines) - len(kept)
    if hidden > 0:
        out += f"\n… {hidden} more line{'s' if hidden > 1 else ''}"
    return out
