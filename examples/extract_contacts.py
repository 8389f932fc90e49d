"""Extract a contact from every text file in a folder, one JSON object per line.

    python examples/extract_contacts.py FOLDER [--model tiny] [--out contacts.jsonl]

Every line is valid against the shipped `contact` schema (the grammar guarantees it);
each record carries the file it came from. The grammar is compiled once and reused
from the cache for every file, and the model is loaded once.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from agent import extract_with_stats, load_model
from agent.errors import UserError
from schemas import shipped_schema


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--out", type=Path, default=None, help="JSONL file (default: stdout)")
    parser.add_argument("--max-tokens", type=int, default=256)
    args = parser.parse_args(argv)

    if not args.folder.is_dir():
        print(f"error: '{args.folder}' is not a folder", file=sys.stderr)
        return 2
    files = sorted(p for p in args.folder.iterdir() if p.suffix in {".txt", ".md"})
    if not files:
        print(f"error: no .txt or .md files in '{args.folder}'", file=sys.stderr)
        return 2

    schema = shipped_schema("contact")
    model = load_model(args.model)
    out = args.out.open("w", encoding="utf-8") if args.out else sys.stdout
    try:
        for i, path in enumerate(files, 1):
            text = path.read_text(encoding="utf-8", errors="replace")
            try:
                result = extract_with_stats(text, schema, model, max_tokens=args.max_tokens)
            except UserError as exc:
                print(f"[{i}/{len(files)}] {path.name}: skipped: {exc}", file=sys.stderr)
                continue
            record = {"file": path.name, "contact": result.value}
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            out.flush()
            s = result.stats
            print(
                f"[{i}/{len(files)}] {path.name}: {s.generated_tokens} tok, "
                f"{s.decode_tps:.1f} tok/s, compile {s.compile_ms:.0f} ms"
                f"{' (cached)' if s.compile_cached else ''}, forced {s.forced_fraction:.0%}",
                file=sys.stderr,
            )
    finally:
        if out is not sys.stdout:
            out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
