"""The index on disk: one SQLite file holding documents, chunks, FTS5 and vectors.

SQLite because it is embedded, persistent and transactional with no server. WAL mode
lets searches read a consistent snapshot while an ingest writes: every document is
replaced (document row, chunks, full-text rows, vectors) inside one transaction, so
a reader sees either the old or the new version, never half of one.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from agent.errors import UserError
from agent.retriever.chunking import Chunk
from agent.retriever.errors import (
    IndexBusyError,
    IndexCorruptError,
    IndexFullError,
    IndexNotFoundError,
    IndexReadOnlyError,
)

DB_FILENAME = "index.sqlite3"
SCHEMA_VERSION = 1
APPLICATION_ID = 0x45414758  # "EAGX": marks the file as an edge-agent index
_SQLITE_HEADER = b"SQLite format 3\x00"
BUSY_TIMEOUT_S = 30.0

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE documents (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    chars INTEGER NOT NULL,
    chunker TEXT NOT NULL,
    embedded INTEGER NOT NULL DEFAULT 0,
    ingested_at REAL NOT NULL
);
CREATE TABLE chunks (
    id INTEGER PRIMARY KEY,
    doc_id INTEGER NOT NULL REFERENCES documents(id),
    seq INTEGER NOT NULL,
    start INTEGER NOT NULL,
    end INTEGER NOT NULL,
    tokens INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX chunks_by_doc ON chunks(doc_id, seq);
CREATE VIRTUAL TABLE chunks_fts USING fts5(
    text, content='chunks', content_rowid='id', tokenize='porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER chunks_fts_insert AFTER INSERT ON chunks BEGIN
    INSERT INTO chunks_fts(rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER chunks_fts_delete AFTER DELETE ON chunks BEGIN
    INSERT INTO chunks_fts(chunks_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;
-- float32 little-endian blobs: sqlite-vec's vector format, readable with or without it.
CREATE TABLE chunk_vectors (
    chunk_id INTEGER PRIMARY KEY REFERENCES chunks(id),
    embedding BLOB NOT NULL
);
"""


@dataclass(frozen=True)
class DocumentRecord:
    path: str
    kind: str
    size: int
    mtime_ns: int
    sha256: str
    chars: int
    chunker: str
    embedded: bool


def db_path(index_dir: Path) -> Path:
    return Path(index_dir) / DB_FILENAME


def _is_busy(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def _is_full(exc: BaseException) -> bool:
    if isinstance(exc, OSError):
        return exc.errno == errno.ENOSPC
    return "disk is full" in str(exc).lower() or "disk full" in str(exc).lower()


def _is_read_only(exc: BaseException) -> bool:
    if isinstance(exc, OSError):
        return exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM)
    return "readonly" in str(exc).lower().replace(" ", "")


@contextmanager
def translate_errors(path: Path) -> Iterator[None]:
    """SQLite errors as user errors that say what is wrong with which index.

    A full disk and a read-only file are not damage: the transaction was rolled back and
    the index is intact, so the advice is to free space or get write access, not to
    delete it (which is what "damaged" once told the user, wrongly).
    """
    try:
        yield
    except (sqlite3.OperationalError, OSError) as exc:
        if _is_full(exc):
            raise IndexFullError(
                f"no space left on device (index unchanged) while writing {path}; "
                "free some space and run the ingest again"
            ) from None
        if _is_read_only(exc):
            raise IndexReadOnlyError(
                f"the index at {path} is read-only (searches work, writes do not); make it "
                "writable or ingest into another --index"
            ) from None
        if isinstance(exc, OSError):
            raise
        if _is_busy(exc):
            raise IndexBusyError(
                f"the index at {path} is locked by another process (an ingest?); try again"
            ) from None
        raise IndexCorruptError(
            f"the index at {path} is damaged or unreadable ({exc}); "
            f"delete it and run `edge-agent ingest` again"
        ) from None
    except sqlite3.DatabaseError as exc:
        if _is_full(exc):  # SQLITE_FULL arrives as a DatabaseError too
            raise IndexFullError(
                f"no space left on device (index unchanged) while writing {path}; "
                "free some space and run the ingest again"
            ) from None
        raise IndexCorruptError(
            f"the index at {path} is corrupt ({exc}); delete it and run `edge-agent ingest` again"
        ) from None


def _writable(path: Path) -> bool:
    """Whether SQLite can write the index: the file, and its directory (WAL and -shm
    files live next to it). A read-only index is opened read-only and still searched."""
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)


def _connect_read_only(path: Path) -> sqlite3.Connection:
    """A read-only connection; `immutable` when even the -shm file cannot be made (a
    read-only directory or mount): nothing can be writing such an index anyway."""
    uri = path.resolve().as_uri()
    mode = "immutable=1" if not os.access(path.parent, os.W_OK) else "mode=ro"
    return sqlite3.connect(
        f"{uri}?{mode}",
        uri=True,
        timeout=BUSY_TIMEOUT_S,
        isolation_level=None,
        check_same_thread=False,
    )


def _check_regular_file(path: Path) -> None:
    """Refuse an index file that is a FIFO, socket or device, by name (SQLite would
    block on a FIFO or report it as "not a database")."""
    mode = path.stat().st_mode
    if not stat.S_ISREG(mode):
        kind = "a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "not a regular file"
        raise IndexCorruptError(
            f"{path} is {kind}, not an index file; choose another --index directory"
        )


class IndexStore:
    """Connection and row-level operations of one index file."""

    def __init__(self, conn: sqlite3.Connection, path: Path, read_only: bool = False):
        self.conn = conn
        self.path = path
        self.read_only = read_only

    # -- opening -------------------------------------------------------------------

    @classmethod
    def open(cls, index_dir: Path, create: bool = False) -> IndexStore:
        """Open the index in `index_dir`; with `create`, make it if missing.

        Raises `IndexNotFoundError` (missing), `IndexCorruptError` (not a SQLite file,
        not ours, a newer schema, or damaged).
        """
        index_dir = Path(index_dir).expanduser()
        path = db_path(index_dir)
        if not path.exists():
            if not create:
                raise IndexNotFoundError(
                    f"no index at {index_dir}: create one with "
                    f"`edge-agent ingest PATH --index {index_dir}`"
                )
            if index_dir.exists() and not index_dir.is_dir():
                raise IndexNotFoundError(f"index path {index_dir} exists and is not a directory")
            try:
                index_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise UserError(
                    f"cannot create the index directory {index_dir}: "
                    f"{exc.strerror or exc}; choose a writable --index directory"
                ) from None
        else:
            _check_regular_file(path)
            if path.stat().st_size > 0:
                with path.open("rb") as f:
                    header = f.read(len(_SQLITE_HEADER))
                if header != _SQLITE_HEADER:
                    raise IndexCorruptError(
                        f"{path} is not an edge-agent index (not a SQLite database); "
                        f"delete it and run `edge-agent ingest` again"
                    )
        read_only = path.exists() and not _writable(path)
        if read_only and create:
            raise IndexReadOnlyError(
                f"the index at {index_dir} is read-only, so nothing can be ingested into it; "
                "make it writable or ingest into another --index (searching it still works)"
            )
        try:
            conn = (
                _connect_read_only(path)
                if read_only
                else sqlite3.connect(
                    path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
                )
            )
        except sqlite3.Error as exc:
            raise IndexCorruptError(f"cannot open the index at {path} ({exc})") from None
        store = cls(conn, path, read_only)
        try:
            with translate_errors(path):
                conn.execute("PRAGMA foreign_keys = ON")
                if not read_only:
                    conn.execute("PRAGMA journal_mode = WAL")
                    conn.execute("PRAGMA synchronous = NORMAL")
                store._check_or_create_schema(create)
        except BaseException:
            conn.close()
            raise
        return store

    def _check_or_create_schema(self, create: bool) -> None:
        app_id = self.conn.execute("PRAGMA application_id").fetchone()[0]
        tables = self.conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if app_id == 0 and tables == 0:
            if not create:
                raise IndexCorruptError(f"{self.path} is an empty file, not an index")
            with self.transaction():
                for statement in _statements(_SCHEMA):
                    self.conn.execute(statement)
                self.conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                self.set_meta("schema_version", str(SCHEMA_VERSION))
                self.set_meta("created_at", str(time.time()))
                self.set_meta("generation", "0")
            return
        if app_id != APPLICATION_ID:
            raise IndexCorruptError(
                f"{self.path} is a SQLite database but not an edge-agent index; "
                f"choose another --index directory"
            )
        version = self.get_meta("schema_version")
        if version is None or int(version) > SCHEMA_VERSION:
            raise IndexCorruptError(
                f"{self.path} has index schema {version}, this edge-agent reads "
                f"{SCHEMA_VERSION}; upgrade edge-agent or rebuild the index"
            )

    def close(self) -> None:
        self.conn.close()

    # -- transactions and checks ---------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """A write transaction (taken up front, so two writers queue instead of failing
        half-way); bumps the index generation so cached readers refresh."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
            self.conn.execute(
                "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'"
            )
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """A read transaction: several queries see one consistent state."""
        self.conn.execute("BEGIN")
        try:
            yield
        finally:
            self.conn.execute("COMMIT")

    def verify(self) -> list[str]:
        """Problems found by SQLite's quick_check and FTS5's integrity check (empty: ok)."""
        with translate_errors(self.path):
            problems = [row[0] for row in self.conn.execute("PRAGMA quick_check") if row[0] != "ok"]
            try:
                self.conn.execute("INSERT INTO chunks_fts(chunks_fts) VALUES ('integrity-check')")
            except sqlite3.DatabaseError as exc:
                problems.append(f"full-text index: {exc}")
        return problems

    # -- meta ----------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute(
            "INSERT INTO meta(key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def generation(self) -> int:
        return int(self.get_meta("generation") or 0)

    # -- documents -----------------------------------------------------------------

    def documents(self) -> dict[str, DocumentRecord]:
        rows = self.conn.execute(
            "SELECT path, kind, size, mtime_ns, sha256, chars, chunker, embedded FROM documents"
        )
        return {
            path: DocumentRecord(path, kind, size, mtime_ns, sha256, chars, chunker, bool(embedded))
            for path, kind, size, mtime_ns, sha256, chars, chunker, embedded in rows
        }

    def counts(self) -> tuple[int, int, int]:
        """(documents, chunks, vectors)."""
        return tuple(
            self.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("documents", "chunks", "chunk_vectors")
        )

    def touch(self, path: str, size: int, mtime_ns: int) -> None:
        self.conn.execute(
            "UPDATE documents SET size = ?, mtime_ns = ? WHERE path = ?", (size, mtime_ns, path)
        )

    def old_vectors(self, path: str) -> dict[str, bytes]:
        """Vectors of a document's current chunks by chunk hash, to reuse when only part
        of a file changed."""
        rows = self.conn.execute(
            "SELECT c.sha256, v.embedding FROM chunks c "
            "JOIN documents d ON d.id = c.doc_id JOIN chunk_vectors v ON v.chunk_id = c.id "
            "WHERE d.path = ?",
            (path,),
        )
        return dict(rows)

    def delete_document(self, path: str) -> bool:
        row = self.conn.execute("SELECT id FROM documents WHERE path = ?", (path,)).fetchone()
        if row is None:
            return False
        doc_id = row[0]
        self.conn.execute(
            "DELETE FROM chunk_vectors WHERE chunk_id IN (SELECT id FROM chunks WHERE doc_id = ?)",
            (doc_id,),
        )
        self.conn.execute("DELETE FROM chunks WHERE doc_id = ?", (doc_id,))
        self.conn.execute("DELETE FROM documents WHERE id = ?", (doc_id,))
        return True

    def put_document(
        self,
        record: DocumentRecord,
        chunks: list[Chunk],
        chunk_hashes: list[str],
        vectors: np.ndarray | list[bytes] | None,
    ) -> None:
        """Insert a document with its chunks (and vectors); call inside `transaction()`
        after deleting any previous version."""
        doc_id = self.begin_document(record)
        self.add_chunks(doc_id, 0, chunks, chunk_hashes, vectors)

    def begin_document(self, record: DocumentRecord) -> int:
        """Insert a document row (its chunks follow with `add_chunks`); its id.

        For a document written in batches: the row can take a temporary path while the
        previous version is still needed, then `finish_document` gives it its own.
        """
        cur = self.conn.execute(
            "INSERT INTO documents(path, kind, size, mtime_ns, sha256, chars, chunker, embedded,"
            " ingested_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record.path,
                record.kind,
                record.size,
                record.mtime_ns,
                record.sha256,
                record.chars,
                record.chunker,
                int(record.embedded),
                time.time(),
            ),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def add_chunks(
        self,
        doc_id: int,
        first_seq: int,
        chunks: list[Chunk],
        chunk_hashes: list[str],
        vectors: np.ndarray | list[bytes] | None,
    ) -> None:
        """Insert a batch of a document's chunks, numbered from `first_seq`."""
        ids = []
        for seq, (chunk, digest) in enumerate(zip(chunks, chunk_hashes, strict=True), first_seq):
            cur = self.conn.execute(
                "INSERT INTO chunks(doc_id, seq, start, end, tokens, sha256, text)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (doc_id, seq, chunk.start, chunk.end, chunk.tokens, digest, chunk.text),
            )
            ids.append(cur.lastrowid)
        if vectors is not None:
            blobs = [
                v if isinstance(v, bytes) else np.asarray(v, dtype="<f4").tobytes() for v in vectors
            ]
            self.conn.executemany(
                "INSERT INTO chunk_vectors(chunk_id, embedding) VALUES (?, ?)",
                zip(ids, blobs, strict=True),
            )

    def finish_document(self, doc_id: int, path: str, chars: int) -> None:
        """Give a document begun with `begin_document` its path and character count."""
        self.conn.execute(
            "UPDATE documents SET path = ?, chars = ? WHERE id = ?", (path, chars, doc_id)
        )

    def chunk_rows(self, ids: list[int]) -> dict[int, tuple[str, int, int, str]]:
        """(path, start, end, text) of the given chunk ids."""
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self.conn.execute(
            f"SELECT c.id, d.path, c.start, c.end, c.text FROM chunks c "
            f"JOIN documents d ON d.id = c.doc_id WHERE c.id IN ({marks})",
            ids,
        )
        return {row[0]: row[1:] for row in rows}


def _statements(script: str) -> Iterator[str]:
    """Split a script into statements (executescript() would commit our transaction)."""
    pending = ""
    for line in script.splitlines(keepends=True):
        if line.lstrip().startswith("--"):
            continue
        pending += line
        if sqlite3.complete_statement(pending):
            yield pending.strip()
            pending = ""
