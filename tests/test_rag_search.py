"""Search: CLI output and JSON, missing and corrupt indexes, reads during an ingest,
the Retriever interface other stores implement, and bm25 retrieval quality."""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from pathlib import Path

import pytest
from rag_corpus import LABELLED_DOCS, LABELLED_QUERIES, recall_at_k, write_labelled_corpus
from rag_helpers import cli, run_cli

from agent.retriever import (
    HybridRetriever,
    IndexCorruptError,
    IndexNotFoundError,
    Retriever,
    SearchHit,
    ingest,
    open_index,
    reciprocal_rank_fusion,
)
from agent.retriever.fts import fts_query


@pytest.fixture(scope="module")
def labelled_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("rag-search")
    write_labelled_corpus(root / "docs")
    ingest([root / "docs"], root / "index")
    return root / "index"


def test_cli_search_prints_ranked_hits(labelled_index: Path) -> None:
    proc = cli("search", "how do I descale the espresso machine", "--index", str(labelled_index))
    assert proc.returncode == 0, proc.stderr
    first = proc.stdout.splitlines()[0]
    assert first.startswith("[1] ") and "espresso.md:0-" in first and "score " in first
    assert "citric acid" in proc.stdout
    assert proc.stdout.count("\n[") <= 4  # at most k=5 hits


def test_cli_search_json(labelled_index: Path, capsys) -> None:
    proc = run_cli(
        capsys,
        "search",
        "tyre pressure bicycle",
        "--index",
        str(labelled_index),
        "-k",
        "3",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    hits = json.loads(proc.stdout)
    assert 1 <= len(hits) <= 3
    assert set(hits[0]) >= {"path", "score", "text", "start", "end", "chunk_id"}
    assert hits[0]["path"].endswith("bicycle.md")
    scores = [h["score"] for h in hits]
    assert scores == sorted(scores, reverse=True)
    doc = Path(hits[0]["path"]).read_text()
    assert doc[hits[0]["start"] : hits[0]["end"]] == hits[0]["text"]


def test_cli_search_reads_query_from_stdin(labelled_index: Path, capsys) -> None:
    proc = run_cli(
        capsys, "search", "--index", str(labelled_index), "--json", "-k", "1", stdin="sourdough"
    )
    assert json.loads(proc.stdout)[0]["path"].endswith("sourdough.md")


def test_queries_with_fts_syntax_are_plain_text(labelled_index: Path) -> None:
    assert fts_query('"unbalanced AND (NOT x:y*') == '"unbalanced" OR "x" OR "y"'
    assert fts_query("?!") is None
    with open_index(labelled_index) as index:
        assert index.search('espresso" OR -descale: (NEAR', 3)
        assert index.search("   ", 3) == []
        # A query of function words only still searches them rather than nothing.
        assert fts_query("NOT the AND") == '"not" OR "the" OR "and"'
        assert len(index.search("NOT the AND", 3)) == 3


def test_missing_index_is_a_clear_error(tmp_path: Path, capsys) -> None:
    with pytest.raises(IndexNotFoundError, match="no index at"):
        open_index(tmp_path / "nothing")
    proc = run_cli(capsys, "search", "x", "--index", str(tmp_path / "nothing"))
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        f"edge-agent: error: no index at {tmp_path / 'nothing'}: create one with "
        f"`edge-agent ingest PATH --index {tmp_path / 'nothing'}`"
    )
    assert not (tmp_path / "nothing").exists()  # searching never creates an index


def _copy_index(src: Path, dst: Path) -> Path:
    dst.mkdir()
    with sqlite3.connect(src / "index.sqlite3") as a, sqlite3.connect(dst / "index.sqlite3") as b:
        a.backup(b)
    return dst


def test_corrupt_index_is_detected(labelled_index: Path, tmp_path: Path, capsys) -> None:
    # Not a database at all.
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "index.sqlite3").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(IndexCorruptError, match="not a SQLite database"):
        open_index(garbage)
    # Some other application's SQLite database.
    other = tmp_path / "other"
    other.mkdir()
    with sqlite3.connect(other / "index.sqlite3") as conn:
        conn.execute("CREATE TABLE t(x)")
    with pytest.raises(IndexCorruptError, match="not an edge-agent index"):
        open_index(other)
    # Our index with damaged pages: found by search or at the latest by ingest's check.
    damaged = _copy_index(labelled_index, tmp_path / "damaged")
    db = damaged / "index.sqlite3"
    data = bytearray(db.read_bytes())
    page = 4096
    for offset in range(2 * page, len(data) - page, page):
        data[offset : offset + 64] = b"\xff" * 64
    db.write_bytes(bytes(data))
    search = run_cli(capsys, "search", "espresso", "--index", str(damaged))
    assert search.returncode == 2
    assert "corrupt" in search.stderr or "damaged" in search.stderr
    assert "Traceback" not in search.stderr
    docs = tmp_path / "more"
    docs.mkdir()
    (docs / "a.txt").write_text("anything")
    proc = run_cli(capsys, "ingest", str(docs), "--index", str(damaged))
    assert proc.returncode == 2
    assert "corrupt" in proc.stderr and "delete it and run `edge-agent ingest` again" in (
        proc.stderr
    )
    assert "Traceback" not in proc.stderr


def test_search_during_ingest_sees_consistent_documents(tmp_path: Path) -> None:
    """Readers never see half a document: every document's chunks come from one version,
    and search never fails while a writer replaces documents."""
    docs = tmp_path / "docs"
    docs.mkdir()
    n_docs, rounds = 12, 6

    def write_version(version: int) -> None:
        for i in range(n_docs):
            words = " ".join(f"v{version}marker doc{i} sentence {j}." for j in range(60))
            (docs / f"d{i}.txt").write_text(words)

    index_dir = tmp_path / "index"
    write_version(0)
    ingest([docs], index_dir, chunk_tokens=40, overlap=8)
    errors: list[BaseException] = []
    done = threading.Event()

    def writer() -> None:
        try:
            for version in range(1, rounds + 1):
                write_version(version)
                ingest([docs], index_dir)
        except BaseException as exc:
            errors.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    checks = 0
    with open_index(index_dir) as index:
        conn = index.store.conn
        while not done.is_set() or checks == 0:
            with index.store.snapshot():
                rows = conn.execute(
                    "SELECT d.path, c.text FROM chunks c JOIN documents d ON d.id = c.doc_id"
                ).fetchall()
                fts_rows = conn.execute(
                    "SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH 'sentence'"
                ).fetchone()[0]
            versions: dict[str, set[str]] = {}
            for path, text in rows:
                versions.setdefault(path, set()).update(re.findall(r"(\d+)marker", text))
            assert len(versions) == n_docs
            assert all(len(v) == 1 for v in versions.values()), versions
            assert fts_rows == len(rows)  # full-text rows in step with the chunks
            hits = index.search("marker sentence", 5)
            assert len(hits) == 5
            checks += 1
    thread.join()
    assert not errors, errors
    assert checks >= 2
    with open_index(index_dir) as index:
        texts = " ".join(h.text for h in index.search(f"v{rounds}marker", 50))
        assert set(re.findall(r"(\d+)marker", texts)) == {str(rounds)}


# -- the interface other stores implement --------------------------------------------


class KeywordListRetriever:
    """A stand-in for a remote engine: anything with `search(query, k)` qualifies."""

    def __init__(self, docs: dict[str, str]):
        self.docs = docs

    def search(self, query: str, k: int = 5) -> list[SearchHit]:
        words = set(query.lower().split())
        scored = [
            (len(words & set(text.lower().split())), path, text) for path, text in self.docs.items()
        ]
        scored = sorted((s for s in scored if s[0]), key=lambda s: (-s[0], s[1]))[:k]
        return [
            SearchHit(path=p, start=0, end=len(t), score=float(s), text=t, chunk_id=i)
            for i, (s, p, t) in enumerate(scored)
        ]


def test_other_stores_plug_in_through_the_retriever_protocol(labelled_index: Path) -> None:
    remote = KeywordListRetriever({"wiki/kettle.txt": "kettle limescale vinegar descale"})
    assert isinstance(remote, Retriever)
    with open_index(labelled_index) as local:
        assert isinstance(local, Retriever) and isinstance(local.bm25, Retriever)
        fused = HybridRetriever([local, remote]).search("descale limescale", 5)
    paths = [h.path for h in fused]
    assert "wiki/kettle.txt" in paths and any(p.endswith("espresso.md") for p in paths)


def test_reciprocal_rank_fusion_rewards_agreement() -> None:
    def hit(name: str) -> SearchHit:
        return SearchHit(path=name, start=0, end=1, score=0.0, text=name, chunk_id=0)

    a = [hit("x"), hit("y"), hit("z")]
    b = [hit("y"), hit("w"), hit("x")]
    fused = reciprocal_rank_fusion([a, b], k=4)
    assert [h.path for h in fused] == ["y", "x", "w", "z"]
    assert fused[0].score == pytest.approx(1 / 62 + 1 / 61)


# -- quality -------------------------------------------------------------------------


def test_bm25_recall_at_5_on_labelled_set(labelled_index: Path) -> None:
    with open_index(labelled_index) as index:
        recall, misses = recall_at_k(index, LABELLED_QUERIES, k=5)
    assert len(LABELLED_DOCS) >= 12 and len(LABELLED_QUERIES) >= 20
    assert recall >= 0.85, misses


def test_rag_qa_example_cites_retrieved_chunks(labelled_index: Path, tiny, capsys) -> None:
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "examples" / "rag_qa.py"
    spec = importlib.util.spec_from_file_location("rag_qa_example", path)
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    messages = example.build_messages("descale?", [SearchHit("a.md", 0, 5, 1.0, "citric acid", 7)])
    assert "[1] (a.md:0-5)\ncitric acid" in messages[1]["content"]
    code = example.main(
        ["how to descale the espresso machine", "--index", str(labelled_index), "--max-tokens", "4"]
    )
    out = capsys.readouterr().out
    assert code == 0
    sources = out.split("Sources:\n")[1].splitlines()
    assert sources[0].startswith("[1] ") and "espresso.md" in sources[0]
