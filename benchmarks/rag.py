"""RAG benchmark: ingest throughput and query latency at 10k and 100k chunks.

    python benchmarks/rag.py [--sizes 10000 100000] [--queries 300] [--keep DIR]
    python benchmarks/rag.py --files 1 10 100 200    # one-file ingest: MB/s, peak RSS

Generates a synthetic corpus (words from a Zipf-distributed made-up vocabulary, files
of ~64 KB), ingests it with the real `ingest()` (200-token chunks, 40 overlap), then
times `Index.search` for bm25 queries of 2-3 content words. Dense search latency is
measured on the same index filled with random unit vectors (the latency of an exact
k-NN scan does not depend on the vectors' values) for both vector backends; the MiniLM
embedding throughput is measured separately on a few hundred real chunks.

`--files` ingests single text files of the given sizes in MiB instead, each in its own
child process, and reports MB/s and the peak RSS above the process's baseline (after
imports and the tokenizer), which streaming ingest keeps independent of the file size.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

_HERE = Path(__file__).resolve().parent
# benchmarks/agent.py would shadow the `agent` package: keep this folder last on the path.
sys.path[:] = [
    str(_HERE.parent),
    *(p for p in sys.path if Path(p or ".").resolve() != _HERE),
    str(_HERE),
]

from _machine import machine_description

from agent.retriever import ingest, open_index
from agent.retriever.chunking import DEFAULT_CHUNK_TOKENS, DEFAULT_OVERLAP_TOKENS, count_tokens
from agent.retriever.store import IndexStore
from agent.retriever.vectors import NumpySearch, SqliteVecSearch

SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in ("a", "e", "i", "o", "u", "ai", "or")]
FILE_CHARS = 64 * 1024


def make_vocabulary(rng: np.random.Generator, size: int = 30000) -> list[str]:
    words: set[str] = set()
    while len(words) < size:
        n = int(rng.integers(1, 4))
        words.add("".join(rng.choice(SYLLABLES, n)))
    return sorted(words, key=lambda w: (len(w), w))  # short words are the frequent ones


def zipf_weights(n: int, s: float = 1.07) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1) ** s
    return w / w.sum()


def generate_text(rng, vocab: list[str], weights: np.ndarray, chars: int) -> str:
    out, total = [], 0
    while total < chars:
        n = int(rng.integers(8, 20))
        words = rng.choice(len(vocab), n, p=weights)
        sentence = " ".join(vocab[i] for i in words).capitalize() + "."
        if rng.random() < 0.15:
            sentence += "\n\n"
        out.append(sentence)
        total += len(sentence) + 1
    return " ".join(out)


def write_corpus(root: Path, chunks: int, seed: int = 0) -> tuple[int, list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    vocab = make_vocabulary(rng)
    weights = zipf_weights(len(vocab))
    sample = generate_text(rng, vocab, weights, 20000)
    chars_per_token = len(sample) / count_tokens(sample)
    step = DEFAULT_CHUNK_TOKENS - DEFAULT_OVERLAP_TOKENS
    # Chunks snap back to sentence ends, so they advance a little less than `step`.
    target_chars = int(chunks * step * 0.93 * chars_per_token)
    root.mkdir(parents=True, exist_ok=True)
    written, i = 0, 0
    while written < target_chars:
        text = generate_text(rng, vocab, weights, min(FILE_CHARS, target_chars - written))
        (root / f"doc{i:06d}.txt").write_text(text)
        written += len(text.encode())
        i += 1
    return written, vocab, weights


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q))


def bm25_latency(index_dir: Path, vocab: list[str], n: int, seed: int = 1) -> dict:
    rng = np.random.default_rng(seed)
    times, hits = [], 0
    with open_index(index_dir) as index:
        index.search("warm up", 5)
        for _ in range(n):
            # Content words: ranks 50..5000 of the Zipf vocabulary.
            words = [vocab[int(r)] for r in rng.integers(50, 5000, int(rng.integers(2, 4)))]
            query = " ".join(words)
            start = time.perf_counter()
            hits += len(index.search(query, 5))
            times.append((time.perf_counter() - start) * 1000)
    # Queries that found nothing would flatter the latency.
    assert hits >= 4.5 * n, f"queries returned only {hits / n:.1f} hits on average"
    return {"p50": percentile(times, 50), "p99": percentile(times, 99)}


def fill_random_vectors(index_dir: Path, dim: int = 384) -> None:
    store = IndexStore.open(index_dir)
    rng = np.random.default_rng(2)
    ids = [r[0] for r in store.conn.execute("SELECT id FROM chunks")]
    with store.transaction():
        store.conn.execute("DELETE FROM chunk_vectors")
        for lo in range(0, len(ids), 5000):
            batch = ids[lo : lo + 5000]
            v = rng.standard_normal((len(batch), dim)).astype(np.float32)
            v /= np.linalg.norm(v, axis=1, keepdims=True)
            store.conn.executemany(
                "INSERT INTO chunk_vectors(chunk_id, embedding) VALUES (?, ?)",
                zip(batch, (row.astype("<f4").tobytes() for row in v), strict=True),
            )
    store.close()


def dense_latency(index_dir: Path, n: int, dim: int = 384) -> dict:
    rng = np.random.default_rng(3)
    out = {}
    store = IndexStore.open(index_dir)
    backends = {"numpy": NumpySearch(store), "sqlite-vec": SqliteVecSearch.open(store.path)}
    for name, backend in backends.items():
        if backend is None:
            continue
        times = []
        start = time.perf_counter()
        backend.search(np.ones(dim, dtype=np.float32) / np.sqrt(dim), 5)  # numpy: loads matrix
        first = (time.perf_counter() - start) * 1000
        for _ in range(n):
            q = rng.standard_normal(dim).astype(np.float32)
            q /= np.linalg.norm(q)
            start = time.perf_counter()
            backend.search(q, 5)
            times.append((time.perf_counter() - start) * 1000)
        out[name] = {"first": first, "p50": percentile(times, 50), "p99": percentile(times, 99)}
        backend.close()
    store.close()
    return out


def embedding_throughput(index_dir: Path, n_chunks: int = 32) -> dict:
    from agent.retriever.embeddings import load_embedder

    embedder = load_embedder()
    store = IndexStore.open(index_dir)
    texts = [r[0] for r in store.conn.execute("SELECT text FROM chunks LIMIT ?", (n_chunks,))]
    store.close()
    embedder.embed(texts[:4])
    start = time.perf_counter()
    embedder.embed(texts)
    chunks_s = len(texts) / (time.perf_counter() - start)
    times = []
    for q in ["how do glaciers form", "reset the router", "sourdough starter feeding"] * 5:
        start = time.perf_counter()
        embedder.embed_query(q)
        times.append((time.perf_counter() - start) * 1000)
    return {"chunks_per_s": chunks_s, "query_ms": statistics.median(times)}


def run_size(work: Path, chunks: int, queries: int) -> dict:
    docs, index_dir = work / f"docs-{chunks}", work / f"index-{chunks}"
    written, vocab, _ = write_corpus(docs, chunks)
    start = time.perf_counter()
    summary = ingest([docs], index_dir)
    ingest_s = time.perf_counter() - start
    start = time.perf_counter()
    again = ingest([docs], index_dir)
    reingest_s = time.perf_counter() - start
    assert again.unchanged == summary.added
    with open_index(index_dir) as index:
        n_chunks = index.counts()["chunks"]
    db_mb = (index_dir / "index.sqlite3").stat().st_size / 2**20
    result = {
        "target": chunks,
        "chunks": n_chunks,
        "files": summary.added,
        "corpus_mb": written / 2**20,
        "index_mb": db_mb,
        "ingest_s": ingest_s,
        "ingest_mb_s": written / 2**20 / ingest_s,
        "reingest_s": reingest_s,
        "bm25": bm25_latency(index_dir, vocab, queries),
    }
    fill_random_vectors(index_dir)
    result["dense"] = dense_latency(index_dir, max(20, queries // 5))
    return result


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def file_ingest_child(mib: int, work: Path) -> None:
    """One file of `mib` MiB, ingested in this (fresh) process; prints one JSON line."""
    import json
    import resource

    rng = np.random.default_rng(mib)
    vocab = make_vocabulary(rng)
    weights = zipf_weights(len(vocab))
    block = generate_text(rng, vocab, weights, 1 << 20).encode()[: 1 << 20]
    path = work / f"file-{mib}.txt"
    with path.open("wb") as file:
        for _ in range(mib):
            file.write(block)
    count_tokens("warm up the tokenizer")
    base = _rss_mb()
    t0 = time.perf_counter()
    summary = ingest([path], work / f"file-index-{mib}")
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"mib": mib, "seconds": seconds, "chunks": summary.chunks,
                      "mb_s": mib * 1.048576 / seconds, "base_mb": base,
                      "peak_above_base_mb": peak - base}))  # fmt: skip
    path.unlink()


def file_ingest(sizes: list[int], work: Path) -> list[dict]:
    import json
    import subprocess

    rows = []
    for mib in sizes:
        proc = subprocess.run(
            [sys.executable, __file__, "--child-file", str(mib), "--keep", str(work)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        r = rows[-1]
        print(f"{mib} MiB: {r['mb_s']:.2f} MB/s, peak +{r['peak_above_base_mb']:.0f} MB",
              file=sys.stderr, flush=True)  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10000, 100000])
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--keep", type=Path, default=None, help="work directory to keep")
    parser.add_argument("--files", type=int, nargs="+", default=None, metavar="MIB")
    parser.add_argument("--child-file", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_file is not None:
        file_ingest_child(args.child_file, args.keep)
        return
    if args.files:
        work = args.keep or Path(tempfile.mkdtemp(prefix="edge-agent-rag-files-"))
        try:
            rows = file_ingest(args.files, work)
        finally:
            if args.keep is None:
                shutil.rmtree(work, ignore_errors=True)
        print(f"Machine: {machine_description()}\n")
        print("| file MiB | chunks | seconds | MB/s | baseline RSS MB | peak above baseline MB |")
        print("|---:|---:|---:|---:|---:|---:|")
        for r in rows:
            print(f"| {r['mib']} | {r['chunks']:,} | {r['seconds']:.1f} | {r['mb_s']:.2f} | "
                  f"{r['base_mb']:.0f} | {r['peak_above_base_mb']:.0f} |")  # fmt: skip
        return
    work = args.keep or Path(tempfile.mkdtemp(prefix="edge-agent-rag-bench-"))
    try:
        results = [run_size(work, size, args.queries) for size in args.sizes]
        embed = embedding_throughput(work / f"index-{args.sizes[0]}")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    print(f"Machine: {machine_description()}\n")
    print(
        "| chunks | files | corpus MB | index MB | ingest MB/s | re-ingest (unchanged) s | "
        "bm25 p50 ms | bm25 p99 ms |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['chunks']:,} | {r['files']:,} | {r['corpus_mb']:.1f} | {r['index_mb']:.1f} | "
            f"{r['ingest_mb_s']:.2f} | {r['reingest_s']:.2f} | {r['bm25']['p50']:.2f} | "
            f"{r['bm25']['p99']:.2f} |"
        )
    print("\n| chunks | vector backend | first query ms | p50 ms | p99 ms |")
    print("|---:|---|---:|---:|---:|")
    for r in results:
        for name, d in r["dense"].items():
            print(
                f"| {r['chunks']:,} | {name} | {d['first']:.1f} | {d['p50']:.2f} | {d['p99']:.2f} |"
            )
    print(
        f"\nMiniLM (MLX) embedding: {embed['chunks_per_s']:.1f} chunks/s of ~200 tokens; "
        f"query embedding p50 {embed['query_ms']:.1f} ms"
    )


if __name__ == "__main__":
    main()
