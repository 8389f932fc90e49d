"""`edge-agent models list|pull`: what is on disk, and fetching the built-ins."""

from __future__ import annotations

import argparse
from pathlib import Path

from agent.models.registry import BUILTIN_MODELS, builtin_names
from agent.progress import console_progress


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list local models or pull a built-in one")
    msub = p.add_subparsers(dest="models_command", required=True, metavar="{list,pull}")
    ls = msub.add_parser(
        "list", help="local models (built-ins, hub cache, quants built here), sizes, bits/weight"
    )
    ls.set_defaults(func=run_list)
    pull = msub.add_parser("pull", help="build or fetch a built-in model")
    pull.add_argument(
        "name",
        choices=sorted(BUILTIN_MODELS),
        metavar="NAME",
        help=f"a built-in model: {builtin_names()}",
    )
    pull.set_defaults(func=run_pull)


def dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def human_size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def local_models() -> list[tuple[str, str, Path | None, int]]:
    """(name, kind, path, bytes) for built-ins and hub models in the local cache."""
    rows: list[tuple[str, str, Path | None, int]] = []
    for name, builtin in BUILTIN_MODELS.items():
        ready = builtin.is_ready(builtin.path)
        rows.append(
            (
                name,
                "built-in",
                builtin.path if ready else None,
                dir_size(builtin.path) if ready else 0,
            )
        )
    try:
        from huggingface_hub import scan_cache_dir

        for repo in scan_cache_dir().repos:
            if repo.repo_type != "model":
                continue
            for rev in repo.revisions:
                if any(f.file_name == "config.json" for f in rev.files):
                    rows.append((repo.repo_id, "hub cache", rev.snapshot_path, repo.size_on_disk))
                    break
    except Exception:  # no hub cache yet
        pass
    from agent.quant.local import built_quants

    for entry in built_quants():
        path = Path(entry["path"])
        rows.append((str(path), f"quant {entry.get('recipe', '')}".strip(), path, dir_size(path)))
    return rows


def run_list(args: argparse.Namespace) -> int:
    from agent.quant.bits import bits_per_weight

    rows = local_models()
    width = max(len(r[0]) for r in rows)
    kind_width = max(9, *(len(r[1]) for r in rows))
    print(f"{'MODEL'.ljust(width)}  {'KIND'.ljust(kind_width)}  {'SIZE':>9}  {'BITS/W':>6}  PATH")
    for name, kind, path, size in rows:
        where = str(path) if path else f"(not on disk: edge-agent models pull {name})"
        bpw = bits_per_weight(path) if path else None
        print(
            f"{name.ljust(width)}  {kind.ljust(kind_width)}  "
            f"{human_size(size) if path else '-':>9}  {f'{bpw:.2f}' if bpw else '-':>6}  {where}"
        )
    return 0


def run_pull(args: argparse.Namespace) -> int:
    builtin = BUILTIN_MODELS[args.name]
    with console_progress() as progress:
        path = builtin.ensure(progress)
    print(f"{args.name}: {path} ({human_size(dir_size(path))})")
    return 0


__all__ = ["builtin_names", "register"]
