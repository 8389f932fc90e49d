"""Dense search over the vectors in the index (exact cosine, k nearest).

Vectors are float32 blobs in the `chunk_vectors` table, sqlite-vec's own format. Two
ways to search them, same results (numpy is the default, being the faster):

* `SqliteVecSearch`: sqlite-vec's `vec_distance_cosine` inside SQLite. Needs a sqlite3
  module that can load extensions; the standard library's often cannot (pyenv and
  some distribution builds lack `enable_load_extension`), so `sqlean.py` (the sqlite3
  module with extensions enabled) is tried next. It opens its own read connection.
* `NumpySearch`: reads the matrix once, keeps it while the index generation stays the
  same, and scores with one matrix-vector product. Used when sqlite-vec cannot load.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Protocol

import numpy as np

from agent.retriever.store import IndexStore


class VectorSearch(Protocol):
    name: str

    def search(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        """(chunk id, cosine similarity) best first."""
        ...

    def close(self) -> None:
        """Release what the search holds (Index.close calls it)."""
        ...


def _connect_with_sqlite_vec(path: Path):
    """A connection with sqlite-vec loaded, or None when no sqlite3 module can load it."""
    try:
        import sqlite_vec
    except ImportError:
        return None
    modules = [sqlite3]
    try:
        import sqlean

        modules.append(sqlean)
    except ImportError:
        pass
    for module in modules:
        conn = module.connect(str(path), timeout=30.0, check_same_thread=False)
        try:
            if not hasattr(conn, "enable_load_extension"):
                conn.close()
                continue
            conn.enable_load_extension(True)
            sqlite_vec.load(conn)
            conn.enable_load_extension(False)
            return conn
        except Exception:  # a module without extension support fails in its own way
            conn.close()
    return None


def sqlite_vec_loadable() -> bool:
    """Whether sqlite-vec can be loaded into some sqlite3 module of this Python."""
    conn = _connect_with_sqlite_vec(Path(":memory:"))
    if conn is None:
        return False
    conn.close()
    return True


class SqliteVecSearch:
    name = "sqlite-vec"

    def __init__(self, conn) -> None:
        self._conn = conn

    @classmethod
    def open(cls, path: Path) -> SqliteVecSearch | None:
        conn = _connect_with_sqlite_vec(path)
        return None if conn is None else cls(conn)

    def search(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        blob = np.asarray(query, dtype="<f4").tobytes()
        rows = self._conn.execute(
            "SELECT chunk_id, vec_distance_cosine(embedding, ?) AS d FROM chunk_vectors "
            "ORDER BY d LIMIT ?",
            (blob, k),
        )
        return [(int(chunk_id), 1.0 - float(d)) for chunk_id, d in rows]

    def close(self) -> None:
        self._conn.close()


class NumpySearch:
    name = "numpy"

    def __init__(self, store: IndexStore) -> None:
        self._store = store
        self._generation = -1
        self._ids = np.zeros(0, dtype=np.int64)
        self._matrix = np.zeros((0, 0), dtype=np.float32)

    def _refresh(self) -> None:
        generation = self._store.generation()
        if generation == self._generation:
            return
        rows = self._store.conn.execute("SELECT chunk_id, embedding FROM chunk_vectors").fetchall()
        self._ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        self._matrix = (
            np.frombuffer(b"".join(r[1] for r in rows), dtype="<f4").reshape(len(rows), -1)
            if rows
            else np.zeros((0, 0), dtype=np.float32)
        )
        self._generation = generation

    def search(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        with self._store.snapshot():
            self._refresh()
        if not len(self._ids):
            return []
        scores = self._matrix @ np.asarray(query, dtype=np.float32)
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(self._ids[i]), float(scores[i])) for i in top]

    def close(self) -> None:
        pass


def open_vector_search(store: IndexStore, prefer: str = "auto") -> VectorSearch:
    """numpy by default: at 100k chunks it answers in ~16 ms against ~210 ms for
    sqlite-vec's scan (BENCHMARKS.md), at the cost of holding the vectors in memory
    (1.5 kB a chunk). `prefer="sqlite-vec"` searches inside SQLite instead."""
    if prefer == "sqlite-vec":
        found = SqliteVecSearch.open(store.path)
        if found is None:
            raise RuntimeError("sqlite-vec cannot be loaded into any sqlite3 module here")
        return found
    if prefer not in ("auto", "numpy"):
        raise ValueError(f"unknown vector backend {prefer!r}: auto, numpy or sqlite-vec")
    return NumpySearch(store)
