"""Document-scale extraction: throughput, schema validity and grounding, free vs grounded,
one at a time vs batched.

    python benchmarks/docextract.py [--models smollm2 tiny] [--docs 12] [--schema contact]
                                    [--batches 2 4 8] [--engine mlx] [--repeats 1]

Generates a corpus of short contact notes (names, companies, cities, emails and phone
numbers drawn from fixed lists with a seed, so every run reads the same text), then
runs `extract_many` over it these ways per model:

* `free, cache reset`: no grounding, the prompt cache emptied before every document
  (each prompt prefilled from scratch);
* `free, cached`: no grounding, the cache kept, so a model whose cache can be trimmed
  to a shared prefix reuses the instruction and schema (SmolLM2's attention-only cache
  can; LFM2's short-convolution state cannot be rewound, so `tiny` starts from a
  checkpoint of the prefix instead);
* `free, cached, batch N`: the same, N documents decoding side by side
  (`batch_size=N`: MLX's batch caches, or llama.cpp's parallel sequences);
* `grounded, cached` and `grounded, cached, batch N`: `grounded=True`, every plain
  string a quote of its document.

Every mode decodes greedily (with the model's repetition penalty), so all of them write
the same tokens and the docs/min differ by speed alone (the tokens-per-document column
shows it). Reported: documents per minute, the share of prompt tokens served from the
cache, the share of values that validate against the schema (must be 100%), the share
of all non-empty string values found verbatim in the source at their recorded span, and
the same share among the strings the grammar grounded (must be 100%; `contact`'s
emails, phones and website have a `format` or `pattern`, so they stay free even when
grounded). The load average before and after each model is printed: the machine may be
shared, so compare the modes of one run, not runs.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

_HERE = Path(__file__).resolve().parent
# benchmarks/agent.py would shadow the `agent` package: keep this folder last on the path.
sys.path[:] = [
    str(_HERE.parent),
    *(p for p in sys.path if Path(p or ".").resolve() != _HERE),
    str(_HERE),
]

from _machine import machine_description

FIRST = ["Maria", "Jonas", "Aiko", "Pedro", "Fatima", "Lars", "Chen", "Olga", "Samir", "Ines"]
LAST = ["Rossi", "Berg", "Tanaka", "Alves", "Haddad", "Nilsen", "Wei", "Petrova", "Khan", "Silva"]
ORGS = ["Acme Robotics", "Nordlys Energy", "Blue Harbor Labs", "Grupo Tierra", "Kite Systems"]
ROLES = ["head of procurement", "CTO", "sales lead", "office manager", "research scientist"]
CITIES = [("Rome", "Italy"), ("Oslo", "Norway"), ("Osaka", "Japan"), ("Lisbon", "Portugal"),
          ("Toronto", "Canada")]  # fmt: skip


def corpus(n: int, seed: int = 7) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    docs = []
    for i in range(n):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        org, role = rng.choice(ORGS), rng.choice(ROLES)
        city, country = rng.choice(CITIES)
        email = f"{first.lower()}.{last.lower()}@{org.split()[0].lower()}.example"
        phone = f"+{rng.randint(1, 49)} {rng.randint(100, 999)} {rng.randint(1000, 9999)}"
        text = (
            f"Meeting notes, day {i + 1}.\n\nWe met {first} {last}, {role} at {org}, at their "
            f"office in {city}, {country}. {first} asked for the updated price list and a "
            f"demo next month. Follow up by email at {email} or call {phone}. "
            f'They said: "the pilot went well, but the invoices were late."'
        )
        docs.append((f"note{i:02d}.txt", text))
    return docs


def run(
    model_name: str, schema_name: str, n_docs: int, batches: list[int], engine: str, repeats: int
) -> list[dict]:
    import jsonschema

    from agent import load_model
    from agent.docextract import Text, extract_many
    from agent.docextract.spans import resolve, verbatim_share
    from schemas import shipped_schema

    model = load_model(model_name, engine=engine)
    schema = shipped_schema(schema_name)
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    docs = [Text(text, name) for name, text in corpus(n_docs)]
    # Greedy with the model's repetition penalty: every mode writes the same tokens.
    sampling = model.default_sampling.with_overrides(temperature=0.0, seed=0)
    rows = []
    # Compile the plain grammar once outside the timings, as a long-running batch would.
    list(extract_many(schema, docs[:1], model, max_tokens=256, batch_size=1))
    modes = [("free, cache reset", False, True, 1), ("free, cached", False, False, 1)]
    modes += [(f"free, cached, batch {n}", False, False, n) for n in batches]
    modes += [("grounded, cached", True, False, 1)]
    modes += [(f"grounded, cached, batch {n}", True, False, n) for n in batches[-1:]]
    print(f"{model_name}: load before {_load()}", file=sys.stderr, flush=True)

    def measure(grounded: bool, reset: bool, batch: int) -> tuple[float, list]:
        model.reset_cache()
        results = []
        started = time.perf_counter()
        if reset:
            for doc in docs:
                model.reset_cache()
                results += list(extract_many(schema, [doc], model, grounded=grounded,
                                             max_tokens=256, sampling=sampling,
                                             batch_size=1))  # fmt: skip
        else:
            results = list(extract_many(schema, docs, model, grounded=grounded, max_tokens=256,
                                        sampling=sampling, batch_size=batch))  # fmt: skip
        return time.perf_counter() - started, results

    # Rounds go over every mode in turn, so a change in the machine's load falls on all
    # modes alike; each mode's best round counts.
    timings: dict[str, list[float]] = {label: [] for label, *_ in modes}
    outputs: dict[str, list] = {label: [] for label, *_ in modes}
    for _ in range(repeats):
        for label, grounded, reset, batch in modes:
            elapsed, results = measure(grounded, reset, batch)
            timings[label].append(elapsed)
            outputs[label] += results
            print(f"  {label}: {len(results) / elapsed * 60:.1f} docs/min", file=sys.stderr,
                  flush=True)  # fmt: skip
    for label, *_ in modes:
        elapsed, results = min(timings[label]), outputs[label]
        valid = sum(1 for r in results if r.error is None and validator.is_valid(r.value))
        found = total = quoted = quotes = 0
        for r in results:
            f, t = verbatim_share(r.value, r.spans, r.text)
            found, total = found + f, total + t
            for pointer in r.grounded:  # the strings the grammar quoted
                value = resolve(r.value, pointer)
                if value:
                    quotes += 1
                    span = r.spans.get(pointer)
                    quoted += span is not None and r.text[span[0] : span[1]] == value
        prompt = sum(r.prompt_tokens for r in results)
        cached = sum(r.cached_prompt_tokens for r in results)
        rows.append(
            {
                "model": f"{model_name} ({model.engine})",
                "mode": label,
                "docs_per_min": len(docs) / elapsed * 60,
                "cached_share": cached / prompt if prompt else 0.0,
                "valid": f"{valid}/{len(results)}",
                "verbatim": f"{found}/{total}" + (f" ({found / total:.0%})" if total else ""),
                "grounded": f"{quoted}/{quotes}" if quotes else "-",
                "errors": sum(1 for r in results if r.error),
                "generated": sum(r.generated_tokens for r in results) / len(results),
            }
        )
        print(rows[-1], file=sys.stderr, flush=True)
    print(f"{model_name}: load after {_load()}", file=sys.stderr, flush=True)
    for row in rows:  # speed-ups against one at a time with the cache, same grounding
        same = "grounded, cached" if row["mode"].startswith("grounded") else "free, cached"
        base = next(r for r in rows if r["mode"] == same)
        row["ratio"] = row["docs_per_min"] / base["docs_per_min"]
    return rows


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.1f} (1 min), {five:.1f} (5 min)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["smollm2", "tiny"])
    parser.add_argument("--docs", type=int, default=12)
    parser.add_argument("--schema", default="contact")
    parser.add_argument("--batches", nargs="*", type=int, default=[2, 4, 8])
    parser.add_argument("--engine", default="mlx", help="mlx, llama.cpp or auto")
    parser.add_argument("--repeats", type=int, default=1, help="rounds; the best counts")
    args = parser.parse_args()
    rows = []
    for name in args.models:
        rows += run(name, args.schema, args.docs, args.batches, args.engine, args.repeats)
    print(f"Machine: {machine_description()}\n")
    print(f"Corpus: {args.docs} generated contact notes (~90 words each), schema `{args.schema}`,"
          f" max_tokens 256, greedy, best of {args.repeats} round(s)\n")  # fmt: skip
    columns = (
        "model", "mode", "docs/min", "vs cached, one at a time", "tokens generated per doc",
        "prompt tokens from cache", "schema-valid", "all strings verbatim at their span",
        "grounded strings verbatim",
    )  # fmt: skip
    print("| " + " | ".join(columns) + " |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['model']} | {r['mode']} | {r['docs_per_min']:.1f} | {r['ratio']:.2f}x | "
              f"{r['generated']:.0f} | {r['cached_share']:.0%} | {r['valid']} | "
              f"{r['verbatim']} | {r['grounded']} |")  # fmt: skip


if __name__ == "__main__":
    main()
