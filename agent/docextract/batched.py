"""Documents extracted side by side: the pieces of several documents decode as the
rows of one batch (`agent.structured_batch`), the pieces of one long document too.

A piece is a job; a free row takes the next job, so a short document's row is reused
at once rather than waiting for the longest one. Documents are read ahead only as far
as the batch needs jobs (and at most `READ_AHEAD` rows' worth are held), and results
are still yielded in the order of `sources`: a document done early waits for the ones
before it.

One difference from one-at-a-time: with `passes` > 1, the pieces of a pass run
together, so each is told what the earlier passes found, not what the earlier pieces
of the same pass found.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.docextract.batch import (
    BatchProgress,
    DocumentResult,
    Setup,
    conclude,
    found_so_far,
    label,
    part_of,
    request,
    split,
    tally,
)
from agent.docextract.chunks import Piece
from agent.docextract.merge import Part
from agent.docextract.sources import Text, load, name_of
from agent.errors import UserError
from agent.sampling import SamplingParams

if TYPE_CHECKING:
    from agent.structured_batch import StructuredBatch

READ_AHEAD = 4  # documents in memory at most: this many per row of the batch
SLACK_TOKENS = 64


@dataclass
class _Doc:
    serial: int
    result: DocumentResult
    pieces: list[Piece] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)
    round: int = 1
    parts: dict[tuple[int, int], tuple[Part, Any]] = field(default_factory=dict)
    outstanding: int = 0
    finished: bool = False


@dataclass(frozen=True)
class _Job:
    doc: _Doc
    round: int
    index: int  # 1-based piece number
    found: str | None


def extract_batched(
    setup: Setup,
    items: Sequence[Path | Text],
    *,
    size: int,
    overlap: int,
    passes: int,
    max_tokens: int,
    sampling: SamplingParams | None,
    compile_timeout: float,
    batch_size: int,
    progress: Callable[[BatchProgress], None] | None,
) -> Iterator[DocumentResult]:
    """`extract_many`'s results for `items`, decoded `batch_size` pieces at a time."""
    from agent.structured_batch import StructuredBatch

    row_tokens = None
    if setup.prompt_room is not None:
        # A row holds the instruction and schema, a piece and its output; the slack
        # covers a piece's tokens counted alone vs in the prompt, and what earlier
        # passes found.
        row_tokens = setup.prompt_room * 2 + size + SLACK_TOKENS
    batch = StructuredBatch(setup.engine.model, sampling=sampling, compile_timeout=compile_timeout,
                            rows=batch_size, row_tokens=row_tokens)  # fmt: skip
    try:
        yield from _run(
            setup, batch, items, size=size, overlap=overlap, passes=passes,
            max_tokens=max_tokens, batch_size=batch_size, progress=progress,
        )  # fmt: skip
    finally:
        batch.close()


def _run(
    setup: Setup,
    batch: StructuredBatch,
    items: Sequence[Path | Text],
    *,
    size: int,
    overlap: int,
    passes: int,
    max_tokens: int,
    batch_size: int,
    progress: Callable[[BatchProgress], None] | None,
) -> Iterator[DocumentResult]:
    started = time.perf_counter()
    queue: deque[_Job] = deque()
    docs: deque[_Doc] = deque()  # read, not yet yielded, in order
    jobs: dict[int, _Job] = {}  # in the batch, by key
    upcoming = 0  # next item to read
    yielded = 0
    serial = 0  # job keys

    def tell(doc: _Doc, chunk: int, finished: DocumentResult | None = None) -> None:
        if progress is not None:
            chunks = len(doc.pieces)
            progress(
                BatchProgress(
                    yielded + (finished is not None), len(items), doc.result.source,
                    chunk, chunks, time.perf_counter() - started, finished,
                )
            )  # fmt: skip

    def queue_round(doc: _Doc) -> None:
        found = None
        if doc.round > 1:
            found = found_so_far(_ordered(doc), setup.schema)
        for index in range(1, len(doc.pieces) + 1):
            queue.append(_Job(doc, doc.round, index, found))
        doc.outstanding = len(doc.pieces)

    def fail(doc: _Doc, exc: Exception) -> None:
        doc.result.error = str(exc) if isinstance(exc, UserError) else _describe(exc)
        doc.finished = True
        doc.result.seconds = time.perf_counter() - doc.started

    def read_next() -> None:
        nonlocal upcoming
        item = items[upcoming]
        upcoming += 1
        document = load(item)
        doc = _Doc(upcoming - 1, DocumentResult(name_of(item), text=document.text))
        docs.append(doc)
        if document.error is not None:
            doc.result.error = document.error
            doc.finished = True
            return
        try:
            doc.pieces = split(setup, document, size, overlap)
        except UserError as exc:
            fail(doc, exc)
            return
        doc.result.chunks = len(doc.pieces)
        queue_round(doc)

    def finish_piece(job: _Job, value: Any, stats: Any) -> None:
        doc = job.doc
        piece = doc.pieces[job.index - 1]
        name = label(job.index, job.round, passes)
        doc.parts[(job.round, job.index)] = (part_of(piece, value, name), stats)
        doc.outstanding -= 1
        if doc.outstanding:
            return
        if doc.round < passes:
            doc.round += 1
            queue_round(doc)
            return
        result = doc.result
        try:
            for key in sorted(doc.parts):  # the order one-at-a-time counts them in
                tally(result, doc.parts[key][1])
            conclude(setup, result, _ordered(doc))
        except UserError as exc:
            fail(doc, exc)
            return
        doc.finished = True
        result.seconds = time.perf_counter() - doc.started

    while True:
        # Read documents while the batch could use more jobs than are queued.
        while (
            upcoming < len(items)
            and len(queue) < batch_size - len(jobs)
            and len(docs) < READ_AHEAD * batch_size
        ):
            read_next()
        while len(jobs) < batch_size and queue:
            job = queue.popleft()
            if job.doc.finished:  # an earlier piece failed: the document is done
                continue
            serial += 1
            jobs[serial] = job
            tell(job.doc, job.index)
            messages, output = request(setup, job.doc.pieces[job.index - 1], job.found)
            batch.add(serial, messages, output, max_tokens=max_tokens)
        while docs and docs[0].finished:
            doc = docs.popleft()
            tell(doc, doc.result.chunks, doc.result)
            yielded += 1
            yield doc.result
        if not jobs:
            if not queue and not docs and upcoming >= len(items):
                return
            continue
        for item in batch.step():
            job = jobs.pop(item.key)
            if job.doc.finished:
                continue  # its document already failed
            if item.result is None:
                assert item.error is not None
                fail(job.doc, item.error)
            else:
                finish_piece(job, item.result.value, item.result.stats)


def _ordered(doc: _Doc) -> list[Part]:
    return [doc.parts[key][0] for key in sorted(doc.parts)]


def _describe(exc: Exception) -> str:
    """An unexpected error of one piece, recorded for its document alone."""
    return f"{type(exc).__name__}: {exc}"
