"""Ingest streams: memory does not grow with the file (read, chunk, write in batches).

A file once cost ~30 bytes of memory per byte (a 10 MiB file peaked at 408 MB); the
bound is checked as a cap on the child process's data size (`memory_cap`), not a
timing. Windowed chunking keeps every chunking guarantee across window cuts.
"""

from __future__ import annotations

import itertools
from pathlib import Path

from memory_cap import MIB, run_capped

from agent.retriever import ingest, open_index
from agent.retriever.chunking import TokenChunker, count_tokens

PARAGRAPH = (
    "Glaciers form where snow accumulates faster than it melts. Über die Gletscher, "
    "日本語の文章も少し。 Meltwater lakes and moraines mark where a glacier once reached.\n"
)


def test_windowed_chunks_keep_offsets_budget_overlap_and_coverage():
    text = "".join(f"Section {i}. {PARAGRAPH}" + ("\n" if i % 7 == 0 else "") for i in range(900))
    chunker = TokenChunker(chunk_tokens=64, overlap=16)
    pieces = [text[i : i + 997] for i in range(0, len(text), 997)]
    chunks = list(chunker.iter_chunks(pieces, window_chars=6_000))  # ~20 windows
    for chunk in chunks:
        assert text[chunk.start : chunk.end] == chunk.text
        assert chunk.tokens <= 64
        assert count_tokens(chunk.text) <= 64 + 1  # +1: a split multi-byte char rounds up
    for before, after in itertools.pairwise(chunks):
        assert before.start < after.start < before.end  # in order, and overlapping
    covered = set()
    for chunk in chunks:
        covered.update(range(chunk.start, chunk.end))
    assert covered >= {i for i, ch in enumerate(text) if not ch.isspace()}
    whole = chunker.split(text)  # the same text at once: nearly the same chunks
    assert abs(len(chunks) - len(whole)) <= len(whole) // 50


def test_large_file_ingests_within_a_memory_cap(tmp_path: Path):
    """24 MiB of text under a cap of 120 MB above the baseline (it needed ~700 MB)."""
    path = tmp_path / "big.txt"
    block = "".join(f"Line {i}: {PARAGRAPH}" for i in range(2000)).encode()
    with path.open("wb") as file:
        for _ in range(24 * MIB // len(block) + 1):
            file.write(block)
        file.write(b"\nThe last line names the zirconium marker.\n")
    size = path.stat().st_size
    result = run_capped(
        setup="""
            from agent.retriever import ingest, open_index
            from agent.retriever.chunking import count_tokens
            count_tokens("warm up the tokenizer before the cap")
        """,
        body=f"""
            summary = ingest([{str(path)!r}], {str(tmp_path / "index")!r})
            result = {{"added": summary.added, "chunks": summary.chunks,
                       "bytes": summary.bytes_read}}
        """,
        allowance=120 * MIB,
    )
    assert result["added"] == 1 and result["bytes"] == size
    assert result["chunks"] > size // 2000  # 200-token chunks: about one per 1 KB
    with open_index(tmp_path / "index") as index:
        assert index.counts()["chunks"] == result["chunks"]
        hits = index.search("zirconium marker", k=1)
        (chars,) = index.store.conn.execute("SELECT chars FROM documents").fetchone()
    assert hits and "zirconium" in hits[0].text
    assert chars == len(path.read_text(encoding="utf-8"))


def test_invalid_byte_deep_in_a_file_is_skipped_and_leaves_no_half_document(tmp_path: Path):
    path = tmp_path / "notes.txt"
    path.write_text(PARAGRAPH * 10)
    ingest([path], tmp_path / "index")
    good = PARAGRAPH.encode() * 30_000  # ~3 MB: the bad byte is past the first windows
    path.write_bytes(good + b"caf\xe9" + good)
    summary = ingest([path], tmp_path / "index")
    reasons = dict(summary.skipped)
    assert reasons == {str(path): f"not UTF-8 text (invalid byte at offset {len(good) + 3})"}
    with open_index(tmp_path / "index") as index:
        assert index.counts() == {"documents": 0, "chunks": 0, "vectors": 0}
