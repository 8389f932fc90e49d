"""Ingest: bring an index in line with files and folders.

New files are added, changed ones replaced, unchanged ones skipped (same size and
mtime, or failing that the same content hash), and indexed files that disappeared
from an ingested folder are dropped. Every document is written in its own
transaction, so an interrupted ingest leaves a consistent index that the next run
completes.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from agent.errors import UserError
from agent.progress import ProgressCallback, silent_progress
from agent.retriever.chunking import (
    DEFAULT_CHUNK_TOKENS,
    DEFAULT_OVERLAP_TOKENS,
    Chunk,
    TokenChunker,
)
from agent.retriever.errors import EMBEDDINGS_INSTALL
from agent.retriever.index import EMBEDDING_META_KEY, default_index_dir
from agent.retriever.loaders import UnreadableFile, kind_of, load_document
from agent.retriever.loaders.text import READ_BLOCK, TextStream
from agent.retriever.store import (
    DB_FILENAME,
    DocumentRecord,
    IndexStore,
    db_path,
    translate_errors,
)

# Folders that hold tools' state or dependencies rather than a user's documents.
SKIP_DIRS = frozenset(
    {"node_modules", "__pycache__", "venv", "site-packages", "dist-packages", "target"}
)
MAX_FILE_BYTES = 256 * 2**20
STREAMED_KINDS = frozenset({"text", "code"})  # read a window at a time (see _write_document)
WRITE_BATCH = 256  # chunks per insert (and per embedding call)

WarnCallback = Callable[[str], None]


@dataclass
class IngestSummary:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    unsupported: int = 0  # files in folders with a type ingest does not read
    chunks: int = 0  # chunks written by this run
    bytes_read: int = 0  # bytes of files that were (re)indexed
    seconds: float = 0.0
    embedded: bool = False

    def line(self) -> str:
        parts = [
            f"{self.added} added",
            f"{self.updated} updated",
            f"{self.unchanged} unchanged",
            f"{self.removed} removed",
            f"{len(self.skipped)} skipped",
        ]
        if self.unsupported:
            parts.append(f"{self.unsupported} not supported")
        rate = self.bytes_read / 2**20 / self.seconds if self.seconds > 0 else 0.0
        return (
            f"{', '.join(parts)}; {self.chunks} chunks written"
            f"{' with embeddings' if self.embedded and self.chunks else ''}"
            f" ({self.bytes_read / 2**20:.1f} MB in {self.seconds:.1f} s, {rate:.1f} MB/s)"
        )


@dataclass(frozen=True)
class _Candidate:
    path: Path
    kind: str


def _walk(root: Path, summary: IngestSummary) -> Iterable[_Candidate]:
    """Supported files under `root`, sorted; hidden files and tool folders skipped."""
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in SKIP_DIRS)
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            path = Path(dirpath) / name
            kind = kind_of(path)
            if kind is None:
                summary.unsupported += 1
            elif path.is_file():
                yield _Candidate(path, kind)


def _collect(
    roots: Sequence[Path], known: dict[str, DocumentRecord], summary: IngestSummary
) -> tuple[list[_Candidate], list[Path]]:
    """Files to consider, and the roots whose indexed documents may be dropped."""
    candidates: dict[Path, _Candidate] = {}
    scopes: list[Path] = []
    for root in roots:
        if root.is_dir():
            scopes.append(root)
            for candidate in _walk(root, summary):
                candidates.setdefault(candidate.path, candidate)
        elif root.is_file():
            scopes.append(root)
            # A file named explicitly is read even with an unknown extension (as text).
            candidates.setdefault(root, _Candidate(root, kind_of(root) or "text"))
        elif any(_within(path, root) for path in known):
            scopes.append(root)  # deleted since the last ingest: drop what it held
        else:
            raise UserError(f"cannot ingest '{root}': no such file or directory")
    return list(candidates.values()), scopes


def _within(path: str, root: Path) -> bool:
    return path == str(root) or path.startswith(str(root).rstrip(os.sep) + os.sep)


def ingest(
    paths: Sequence[str | Path],
    index_dir: str | Path | None = None,
    *,
    chunk_tokens: int | None = None,
    overlap: int | None = None,
    embed: bool = False,
    progress: ProgressCallback = silent_progress,
    warn: WarnCallback = lambda message: None,
) -> IngestSummary:
    """Ingest files and folders into the index at `index_dir` (created if missing).

    `embed` adds dense vectors; once an index has them, every later ingest keeps them
    up to date. Chunk sizes default to the index's own (or 200/40 tokens for a new
    index); changing them re-chunks every document this run touches.
    """
    if not paths:
        raise UserError("nothing to ingest: give at least one file or folder")
    started = time.perf_counter()
    directory = Path(index_dir).expanduser() if index_dir is not None else default_index_dir()
    roots = [Path(p).expanduser().resolve() for p in paths]
    new_index = not db_path(directory).exists()
    if new_index:  # nothing known to drop: every path must exist before anything is made
        for root in roots:
            if not root.exists():
                raise UserError(f"cannot ingest '{root}': no such file or directory")
    made = [d for d in (directory, *directory.parents) if not d.exists()]
    store = IndexStore.open(directory, create=True)
    summary = IngestSummary()
    ok = False
    try:
        with translate_errors(store.path):
            problems = store.verify()
            if problems:
                raise UserError(
                    f"the index at {directory} is corrupt ({problems[0]}); "
                    f"delete it and run `edge-agent ingest` again"
                )
            chunker = _chunker(store, chunk_tokens, overlap)
            embedder = _embedder(store, embed, progress)
            summary.embedded = embedder is not None
            known = store.documents()
            candidates, scopes = _collect(roots, known, summary)
            seen: set[str] = set()
            total = float(sum(_size(c.path) for c in candidates)) or 1.0
            done = 0.0
            progress("Ingesting", 0, total)
            for candidate in candidates:
                key = str(candidate.path)
                kept = _ingest_one(
                    store, candidate, known.get(key), chunker, embedder, summary, warn
                )
                if kept:
                    seen.add(key)
                done += _size(candidate.path)
                progress("Ingesting", done, total)
            for path in sorted(known):
                if path not in seen and any(_within(path, scope) for scope in scopes):
                    with store.transaction():
                        store.delete_document(path)
                    summary.removed += 1
        ok = True
    finally:
        store.close()
        if new_index and not ok:  # a failed first ingest leaves no empty index behind
            _remove_new_index(directory, made)
    summary.seconds = time.perf_counter() - started
    return summary


def _remove_new_index(directory: Path, made: list[Path]) -> None:
    """Delete the index files this ingest created, and the folders it made for them."""
    for path in directory.glob(DB_FILENAME + "*"):
        path.unlink(missing_ok=True)
    for folder in made:  # deepest first
        try:
            folder.rmdir()
        except OSError:
            break


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _chunker(store: IndexStore, chunk_tokens: int | None, overlap: int | None) -> TokenChunker:
    size = chunk_tokens or int(store.get_meta("chunk_tokens") or DEFAULT_CHUNK_TOKENS)
    if overlap is None:
        stored = store.get_meta("overlap_tokens")
        overlap = int(stored) if stored is not None and chunk_tokens is None else None
    if overlap is None:
        overlap = min(DEFAULT_OVERLAP_TOKENS, size // 5)
    try:
        chunker = TokenChunker(size, overlap)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    with store.transaction():
        store.set_meta("chunk_tokens", str(chunker.chunk_tokens))
        store.set_meta("overlap_tokens", str(chunker.overlap))
    return chunker


def _embedder(store: IndexStore, embed: bool, progress: ProgressCallback):
    current = store.get_meta(EMBEDDING_META_KEY)
    if not embed and not current:
        return None
    try:
        from agent.retriever.embeddings import load_embedder
    except ImportError as exc:
        raise UserError(
            f"embeddings need the `embeddings` extra (`{EMBEDDINGS_INSTALL}`): {exc}"
        ) from None
    embedder = load_embedder(progress)
    if current and current != embedder.name:
        raise UserError(
            f"the index was embedded with {current}, not {embedder.name}; use a new --index"
        )
    if not current:
        with store.transaction():
            store.set_meta(EMBEDDING_META_KEY, embedder.name)
    return embedder


def _ingest_one(
    store: IndexStore,
    candidate: _Candidate,
    old: DocumentRecord | None,
    chunker: TokenChunker,
    embedder,
    summary: IngestSummary,
    warn: WarnCallback,
) -> bool:
    """Bring one file up to date; False when it was skipped (and is not indexed)."""
    key = str(candidate.path)
    needs_vectors = embedder is not None

    def up_to_date(record: DocumentRecord) -> bool:
        return record.chunker == chunker.signature and (record.embedded or not needs_vectors)

    def skip(reason: str) -> bool:
        summary.skipped.append((key, reason))
        warn(f"skipped {key}: {reason}")
        if old is not None:
            with store.transaction():
                store.delete_document(key)
        return False

    try:
        stat = candidate.path.stat()
        if (
            old
            and old.size == stat.st_size
            and old.mtime_ns == stat.st_mtime_ns
            and up_to_date(old)
        ):
            summary.unchanged += 1
            return True
        if stat.st_size > MAX_FILE_BYTES:
            return skip(f"larger than {MAX_FILE_BYTES // 2**20} MB")
        digest, size = _file_digest(candidate.path)
    except OSError as exc:
        return skip(f"cannot read ({exc.strerror or exc})")
    if old and old.sha256 == digest and up_to_date(old):
        with store.transaction():
            store.touch(key, stat.st_size, stat.st_mtime_ns)
        summary.unchanged += 1
        return True
    record = DocumentRecord(
        path=key,
        kind=candidate.kind,
        size=stat.st_size,
        mtime_ns=stat.st_mtime_ns,
        sha256=digest,
        chars=0,  # known once the text is read
        chunker=chunker.signature,
        embedded=embedder is not None,
    )
    try:
        chunks = _write_document(store, record, candidate, old, chunker, embedder)
    except UnreadableFile as exc:
        return skip(str(exc))
    except OSError as exc:
        return skip(f"cannot read ({exc.strerror or exc})")
    if old is None:
        summary.added += 1
    else:
        summary.updated += 1
    summary.chunks += chunks
    summary.bytes_read += size
    return True


def _file_digest(path: Path) -> tuple[str, int]:
    """sha256 of a file, read in blocks; (hex digest, bytes read)."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as file:
        while block := file.read(READ_BLOCK):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def _write_document(
    store: IndexStore,
    record: DocumentRecord,
    candidate: _Candidate,
    old: DocumentRecord | None,
    chunker: TokenChunker,
    embedder,
) -> int:
    """Replace the document in one transaction, writing its chunks in batches; the
    number of chunks.

    Text and code are read, chunked and written a window at a time (`TextStream`,
    `TokenChunker.iter_chunks`), so memory does not grow with the file; other kinds
    (HTML, PDF) need the whole file to make their text. The new version is written
    under a temporary path beside the old one (whose vectors it may reuse), which it
    replaces at the end: readers see the old or the new document, never half of one.
    """
    key = record.path
    with candidate.path.open("rb") as file:
        pieces: Iterable[str]
        if candidate.kind in STREAMED_KINDS:
            stream = TextStream(file)
            pieces, chars = stream, lambda: stream.chars
        else:
            text = load_document(candidate.kind, file.read())
            pieces, chars = [text], lambda: len(text)
        with store.transaction():
            reuse = store.old_vectors(key) if old is not None and embedder is not None else {}
            doc_id = store.begin_document(replace(record, path=f"writing:{key}"))
            count = 0
            for batch in _batches(chunker.iter_chunks(pieces), WRITE_BATCH):
                hashes = [
                    hashlib.sha256(c.text.encode("utf-8", "surrogatepass")).hexdigest()
                    for c in batch
                ]
                vectors = None
                if embedder is not None:
                    missing = [i for i, h in enumerate(hashes) if h not in reuse]
                    fresh = embedder.embed([batch[i].text for i in missing]) if missing else []
                    by_index: dict[int, Any] = dict(zip(missing, fresh, strict=True))
                    vectors = [
                        by_index[i] if i in by_index else reuse[h] for i, h in enumerate(hashes)
                    ]
                store.add_chunks(doc_id, count, batch, hashes, vectors)
                count += len(batch)
            store.delete_document(key)
            store.finish_document(doc_id, key, chars())
    return count


def _batches(chunks: Iterable[Chunk], size: int) -> Iterator[list[Chunk]]:
    batch: list[Chunk] = []
    for chunk in chunks:
        batch.append(chunk)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
