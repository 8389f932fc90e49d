"""An opened index and its retrievers: bm25 (default), dense and hybrid."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from agent.paths import data_dir
from agent.progress import ProgressCallback, silent_progress
from agent.retriever.errors import EMBEDDINGS_INSTALL, EmbeddingsUnavailableError
from agent.retriever.fts import bm25_search
from agent.retriever.hybrid import HybridRetriever
from agent.retriever.protocol import Retriever, SearchHit
from agent.retriever.store import IndexStore, translate_errors

if TYPE_CHECKING:
    from agent.retriever.embeddings import Embedder
    from agent.retriever.vectors import VectorSearch

SearchMode = Literal["bm25", "dense", "hybrid"]
SEARCH_MODES: tuple[str, ...] = ("bm25", "dense", "hybrid")
EMBEDDING_META_KEY = "embedding_model"


def default_index_dir() -> Path:
    """Where `ingest` and `search` keep the index unless told otherwise."""
    return data_dir() / "index"


class Index:
    """One on-disk index. `search` ranks with the mode given at open time; `bm25`,
    `dense` and `hybrid` are `Retriever`s of their own."""

    def __init__(
        self,
        store: IndexStore,
        mode: SearchMode = "bm25",
        vector_backend: str = "auto",
        progress: ProgressCallback = silent_progress,
    ):
        if mode not in SEARCH_MODES:
            raise ValueError(f"unknown search mode {mode!r}; expected one of {SEARCH_MODES}")
        self.store = store
        self.mode = mode
        self._vector_backend = vector_backend
        self._progress = progress
        self._lock = threading.RLock()
        self._vectors: VectorSearch | None = None
        self._embedder: Embedder | None = None
        self.bm25 = _Bm25Retriever(self)
        self.dense = _DenseRetriever(self)
        self.hybrid = HybridRetriever([self.bm25, self.dense])
        if mode != "bm25":
            self._require_embeddings()

    @property
    def path(self) -> Path:
        return self.store.path.parent

    @property
    def embedding_model(self) -> str | None:
        with translate_errors(self.store.path):
            return self.store.get_meta(EMBEDDING_META_KEY)

    def counts(self) -> dict[str, int]:
        with translate_errors(self.store.path):
            docs, chunks, vectors = self.store.counts()
        return {"documents": docs, "chunks": chunks, "vectors": vectors}

    def search(self, query: str, k: int = 5) -> list[SearchHit]:
        retrievers: dict[str, Retriever] = {
            "bm25": self.bm25,
            "dense": self.dense,
            "hybrid": self.hybrid,
        }
        retriever = retrievers[self.mode]
        return retriever.search(query, k)

    def vector_backend_name(self) -> str:
        return self._vector_search().name

    def close(self) -> None:
        with self._lock:
            if self._vectors is not None:
                self._vectors.close()
                self._vectors = None
            self.store.close()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals -----------------------------------------------------------------

    def _require_embeddings(self) -> None:
        if not self.embedding_model:
            raise EmbeddingsUnavailableError(
                f"the index at {self.path} has no embeddings, so dense and hybrid search "
                f"cannot run; add them with `edge-agent ingest PATH --index {self.path} --embed` "
                f"(needs the embeddings extra: `{EMBEDDINGS_INSTALL}`) or use --mode bm25"
            )

    def _vector_search(self) -> VectorSearch:
        from agent.retriever.vectors import open_vector_search

        with self._lock:
            if self._vectors is None:
                self._vectors = open_vector_search(self.store, self._vector_backend)
            return self._vectors

    def _embed_query(self, query: str):
        from agent.retriever.embeddings import load_embedder

        with self._lock:
            if self._embedder is None:
                self._embedder = load_embedder(self._progress)
        return self._embedder.embed_query(query)

    def _hits(self, ranked: list[tuple[int, float]]) -> list[SearchHit]:
        rows = self.store.chunk_rows([chunk_id for chunk_id, _ in ranked])
        # A chunk replaced by a concurrent ingest between the two reads is left out.
        return [
            SearchHit(
                path=rows[cid][0],
                start=rows[cid][1],
                end=rows[cid][2],
                score=score,
                text=rows[cid][3],
                chunk_id=cid,
            )
            for cid, score in ranked
            if cid in rows
        ]


class _Bm25Retriever:
    def __init__(self, index: Index):
        self._index = index

    def search(self, query: str, k: int = 5) -> list[SearchHit]:
        index = self._index
        with index._lock, translate_errors(index.store.path), index.store.snapshot():
            return index._hits(bm25_search(index.store.conn, query, k))


class _DenseRetriever:
    def __init__(self, index: Index):
        self._index = index

    def search(self, query: str, k: int = 5) -> list[SearchHit]:
        index = self._index
        index._require_embeddings()
        if not query.strip():
            return []
        vector = index._embed_query(query)
        with index._lock, translate_errors(index.store.path):
            ranked = index._vector_search().search(vector, k)
            with index.store.snapshot():
                return index._hits(ranked)


def open_index(
    index_dir: str | Path | None = None,
    mode: SearchMode = "bm25",
    *,
    vector_backend: str = "auto",
    progress: ProgressCallback = silent_progress,
) -> Index:
    """Open an existing index (default: the one under the user data directory).

    Raises `IndexNotFoundError` when there is none, `IndexCorruptError` when the file
    is not a readable index, `EmbeddingsUnavailableError` for dense/hybrid on an index
    without vectors.
    """
    directory = Path(index_dir).expanduser() if index_dir is not None else default_index_dir()
    store = IndexStore.open(directory, create=False)
    try:
        return Index(store, mode, vector_backend, progress)
    except BaseException:
        store.close()
        raise
