"""Extraction over many documents, each of any length, every value with its span.

Per document: load it (the ingest loaders), split it so every prompt fits the context
(`chunks`), extract each piece under the schema's grammar (with grounded strings
quoted from that piece: `agent.constrained.grounded`), align every value to its place
in the document (`spans`), and merge the pieces (`merge`). `passes` > 1 goes over the
pieces again, telling the model what was found so far, so it can add what it missed.

The instruction and schema open every prompt, identically, so an engine whose cache
can keep a prefix reuses it from one piece and document to the next (see
BENCHMARKS.md for what that saves and where it does not apply). On a local model (MLX
or llama.cpp) the pieces of several documents decode side by side (`batched`,
`batch_size`); this module takes them one at a time, for a server model and for
`batch_size=1`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from agent.constrained.defaults import DEFAULT_COMPILE_TIMEOUT
from agent.docextract.chunks import DEFAULT_CHUNK_TOKENS, Piece, split_document
from agent.docextract.merge import Part, merge
from agent.docextract.sources import Document, SourceLike, expand, load, name_of
from agent.docextract.spans import Span, align, leaves, resolve
from agent.errors import UserError
from agent.prompt_lookup import EXTRACTION_LOOKUP
from agent.sampling import SamplingParams
from agent.tracing import Tracing

# Pieces decoded side by side (`extract --batch`) when none is asked for, per engine,
# as measured (BENCHMARKS.md, document extraction): on MLX 8 rows gave 1.2-1.6x the
# documents a minute; on llama.cpp (SmolLM2 Q4, 2 cores) 4 and 8 rows gave 0.74-0.99x,
# a step of N rows costing nearly N single steps, so it takes pieces one at a time.
DEFAULT_BATCH_SIZE = 8
DEFAULT_BATCH_SIZES = {"mlx": DEFAULT_BATCH_SIZE, "llama.cpp": 1}

FOUND_SO_FAR = (
    "\n\n---\nAlready extracted from this text (keep what is right, add what is missing):\n"
)


@dataclass
class DocumentResult:
    """One document's extraction: the value, the span of each of its scalars in the
    document text (None where it is not found), or the error that stopped it."""

    source: str
    value: Any = None
    spans: dict[str, Span] = field(default_factory=dict)
    error: str | None = None
    text: str = ""  # the document text the spans index (not written to JSONL)
    chunks: int = 0
    grounded: list[str] = field(default_factory=list)  # pointers quoted by construction
    notes: list[str] = field(default_factory=list)  # how chunk conflicts were resolved
    seconds: float = 0.0
    prompt_tokens: int = 0
    cached_prompt_tokens: int = 0
    generated_tokens: int = 0
    stats: Any = None  # the last piece's GenerationStats (what a one-document run shows)

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_json(self) -> dict[str, Any]:
        """The JSONL record (`edge-agent extract --out`)."""
        return {
            "source": self.source,
            "value": self.value,
            "spans": self.spans,
            "error": self.error,
            "chunks": self.chunks,
            "grounded": self.grounded,
            "notes": self.notes,
        }


@dataclass(frozen=True)
class BatchProgress:
    """Where a batch is: `done` of `total` documents, the current one and its piece."""

    done: int
    total: int
    source: str
    chunk: int  # 1-based; 0 before the first
    chunks: int
    elapsed_s: float
    finished: DocumentResult | None = None  # set when a document just finished

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the rate so far (None before the first document is done)."""
        if self.done == 0:
            return None
        return self.elapsed_s / self.done * (self.total - self.done)


@dataclass
class Setup:
    schema: Any  # the JSON Schema
    spec: Any  # its OutputSpec (the parser validates against the schema)
    grounded: bool  # some strings are grounded (by the flag or by x-grounded)
    grounded_all: bool  # the flag: every plain string
    uses_grammar: bool  # the engine decodes under our grammar (a local model)
    engine: Any
    room: int | None
    count: Callable[[str], int] | None
    batches: bool = False  # the engine decodes several pieces at once
    prompt_room: int | None = None  # tokens besides the piece: instruction, schema, output
    lookup: int = 0  # prompt-lookup draft tokens (one piece at a time on MLX)


def extract_many(
    schema: Any,
    sources: Iterable[SourceLike],
    model: Any = "tiny",
    *,
    grounded: bool = False,
    passes: int = 1,
    chunk_tokens: int | None = None,
    overlap: int | None = None,
    max_tokens: int = 512,
    sampling: SamplingParams | None = None,
    compile_timeout: float = DEFAULT_COMPILE_TIMEOUT,
    skip: Collection[str] = (),
    progress: Callable[[BatchProgress], None] | None = None,
    batch_size: int | None = None,
    tracing: Tracing | None = None,
    lookup: int = EXTRACTION_LOOKUP,
) -> Iterator[DocumentResult]:
    """Extract `schema` from every document of `sources`, one result per document.

    `sources` are file and folder paths (text, Markdown, HTML, PDF, code) and `Text`
    items. `grounded` makes every plain string a verbatim quote of its document (a
    string property with `"x-grounded": true` is grounded either way). A document that
    cannot be read or extracted gets its `error`; the others go on. Sources named in
    `skip` (already done in an earlier run) are not read again.

    `batch_size` pieces (of one document or several) decode side by side on a local
    model, MLX or llama.cpp (`agent.docextract.batched`); a server model takes them one
    at a time. None takes the engine's default (`DEFAULT_BATCH_SIZES`: 8 on MLX, 1 on
    llama.cpp, where batching measured no faster). Results come in the order of
    `sources` either way. Each document is one `extract {model}` span (agent.tracing;
    `tracing` None: the global providers). `lookup` is `extract`'s (pieces decoded one
    at a time on MLX).
    """
    if passes < 1:
        raise UserError(f"passes must be at least 1, got {passes}")
    if batch_size is not None and batch_size < 1:
        raise UserError(f"batch size must be at least 1, got {batch_size}")
    setup = _setup(schema, model, grounded, passes, max_tokens, compile_timeout)
    setup.lookup = lookup
    if batch_size is None:
        batch_size = default_batch_size(setup.engine)
    size = chunk_tokens or DEFAULT_CHUNK_TOKENS
    shared = overlap if overlap is not None else size // 8
    if size < 16:
        raise UserError(f"chunk size must be at least 16 tokens, got {size}")
    if not 0 <= shared <= size // 2:
        raise UserError(f"overlap must be between 0 and {size // 2} tokens, got {shared}")
    items = [item for item in expand(sources) if name_of(item) not in skip]
    if batch_size > 1 and setup.batches:
        from agent.docextract.batched import extract_batched

        for result in extract_batched(
            setup, items, size=size, overlap=shared, passes=passes, max_tokens=max_tokens,
            sampling=sampling, compile_timeout=compile_timeout, batch_size=batch_size,
            progress=progress,
        ):  # fmt: skip
            _trace(tracing, setup, max_tokens, result)
            yield result
        return
    started = time.perf_counter()
    for done, item in enumerate(items):
        name = name_of(item)

        def report(chunk: int, chunks: int, *, _done: int = done, _name: str = name) -> None:
            if progress is not None:
                progress(
                    BatchProgress(
                        _done, len(items), _name, chunk, chunks, time.perf_counter() - started
                    )
                )

        result = _one(setup, load(item), size, shared, passes, max_tokens, sampling,
                      compile_timeout, report)  # fmt: skip
        if progress is not None:
            progress(
                BatchProgress(
                    done + 1, len(items), name, result.chunks, result.chunks,
                    time.perf_counter() - started, result,
                )
            )  # fmt: skip
        _trace(tracing, setup, max_tokens, result)
        yield result


def _trace(tracing: Tracing | None, setup: Setup, max_tokens: int, result: DocumentResult) -> None:
    from agent.tracing.operations import document_span

    engine = setup.engine
    document_span(tracing or Tracing(), engine.name, engine.provider, max_tokens, result)


def _setup(
    schema: Any, model: Any, grounded: bool, passes: int, max_tokens: int, timeout: float
) -> Setup:
    from agent.constrained.grounded import has_grounded_strings
    from agent.constrained.output_types import resolve_output_type
    from agent.engines import as_chat_model
    from agent.engines.local import LocalChatModel
    from agent.structured import extraction_messages, load_schema, resolve_schema_early

    schema = load_schema(schema)
    spec = resolve_output_type(schema)
    if spec.kind != "json":
        raise UserError("extraction over documents needs a JSON Schema (or a pydantic model)")
    resolve_schema_early(schema)
    uses_grounding = has_grounded_strings(spec.json_schema, ground_all=grounded)
    engine = as_chat_model(model)
    local = isinstance(engine, LocalChatModel)
    if uses_grounding and not isinstance(engine, LocalChatModel):
        raise UserError(
            "grounded strings need a local model (the grammar quotes the text); "
            "drop --grounded and x-grounded for a server model"
        )
    room: int | None = None
    count: Callable[[str], int] | None = None
    besides: int | None = None
    if isinstance(engine, LocalChatModel):
        runtime = engine.model
        prompt = runtime.chat_prompt(extraction_messages("", spec.json_schema))
        prefix = len(runtime.encode(prompt))
        reserve = max_tokens * (2 if passes > 1 else 1) + 16
        room = runtime.context_length - prefix - reserve
        besides = prefix + reserve

        def count_model_tokens(text: str) -> int:
            return len(runtime.encode_fragment(text))

        count = count_model_tokens

    batches = False
    if isinstance(engine, LocalChatModel):
        from agent.batch_runtime import supports_batching

        batches = supports_batching(engine.model)
    return Setup(
        spec.json_schema, spec, uses_grounding, grounded, local, engine, room, count, batches,
        besides,
    )  # fmt: skip


def default_batch_size(engine: Any) -> int:
    """The batch size an engine gets when none is asked for (1 where it cannot batch)."""
    from agent.engines.local import LocalChatModel

    if not isinstance(engine, LocalChatModel):
        return 1
    return DEFAULT_BATCH_SIZES.get(str(getattr(engine.model, "engine", "")), 1)


def _one(
    setup: Setup,
    document: Document,
    size: int,
    overlap: int,
    passes: int,
    max_tokens: int,
    sampling: SamplingParams | None,
    compile_timeout: float,
    report: Callable[..., None],
) -> DocumentResult:
    started = time.perf_counter()
    result = DocumentResult(document.source, text=document.text)
    if document.error is not None:
        result.error = document.error
        return result
    try:
        pieces = split(setup, document, size, overlap)
        result.chunks = len(pieces)
        parts: list[Part] = []
        for round_ in range(1, passes + 1):
            for index, piece in enumerate(pieces, start=1):
                report(index, len(pieces))
                found = found_so_far(parts, setup.schema) if round_ > 1 else None
                value, stats = _extract_piece(
                    setup, piece, found, max_tokens, sampling, compile_timeout
                )
                tally(result, stats)
                parts.append(part_of(piece, value, label(index, round_, passes)))
        conclude(setup, result, parts)
    except UserError as exc:
        result.error = str(exc)
    result.seconds = time.perf_counter() - started
    return result


def split(setup: Setup, document: Document, size: int, overlap: int) -> list[Piece]:
    """The document's pieces, each fitting a prompt."""
    return split_document(
        document.text, chunk_tokens=size, overlap=overlap, room=setup.room, count=setup.count
    )


def label(index: int, round_: int, passes: int) -> str:
    return f"chunk {index}" + (f", pass {round_}" if passes > 1 else "")


def part_of(piece: Piece, value: Any, name: str) -> Part:
    """A piece's value as a part of its document: spans in document offsets."""
    return Part(value, align(value, piece.text, piece.start), name)


def tally(result: DocumentResult, stats: Any) -> None:
    """Add one piece's token counts to its document's (the last piece's stats kept)."""
    result.prompt_tokens += stats.prompt_tokens
    result.cached_prompt_tokens += stats.cached_prompt_tokens
    result.generated_tokens += stats.generated_tokens
    result.stats = stats


def conclude(setup: Setup, result: DocumentResult, parts: list[Part]) -> None:
    """Merge the parts into the document's value, spans and notes."""
    merged = merge(parts, setup.schema, _validator(setup))
    result.value, result.spans, result.notes = merged.value, merged.spans, merged.notes
    if setup.grounded:
        result.grounded = sorted(_grounded_in(setup, merged.value))


def _grounded_in(setup: Setup, value: Any) -> set[str]:
    """Pointers of the strings of `value` the grammar quoted (by the schema: a merged
    value is made of whole parts, so its grounded strings are its parts')."""
    from agent.constrained.grounded import grounded_leaf_pointers

    return grounded_leaf_pointers(setup.schema, value, ground_all=setup.grounded_all)


def _validator(setup: Setup) -> Callable[[Any], bool]:
    def valid(value: Any) -> bool:
        try:
            setup.spec.parse(json.dumps(value))
        except (UserError, ValueError):
            return False
        return True

    return valid


def found_so_far(parts: list[Part], schema: Any) -> str:
    """What the parts found, for the prompt of a later pass."""
    merged = merge(parts, schema, lambda value: True)
    return json.dumps(merged.value, ensure_ascii=False, separators=(",", ":"))


def request(setup: Setup, piece: Piece, found: str | None) -> tuple[list[dict[str, str]], Any]:
    """The prompt and output type for one piece (grounded strings quote its text)."""
    from agent.structured import extraction_messages

    messages = extraction_messages(piece.text, setup.schema)
    if found is not None:
        messages[-1]["content"] += FOUND_SO_FAR + found
    output: Any = setup.schema
    if setup.grounded:
        from agent.constrained.grounded import grounded_spec

        output = grounded_spec(setup.schema, piece.text, ground_all=setup.grounded_all)
    return messages, output


def _extract_piece(
    setup: Setup,
    piece: Piece,
    found: str | None,
    max_tokens: int,
    sampling: SamplingParams | None,
    compile_timeout: float,
) -> tuple[Any, Any]:
    messages, output = request(setup, piece, found)
    if not setup.uses_grammar:
        from agent.extraction import extract_with_stats

        text = messages[-1]["content"]
        done = extract_with_stats(
            text, setup.schema, setup.engine, max_tokens=max_tokens, sampling=sampling,
            compile_timeout=compile_timeout,
        )  # fmt: skip
        return done.value, done.stats
    from agent.structured import StructuredResult, stream_structured

    result = None
    for item in stream_structured(
        setup.engine.model, messages, output, max_tokens=max_tokens, sampling=sampling,
        compile_timeout=compile_timeout, lookup=setup.lookup,
    ):  # fmt: skip
        if isinstance(item, StructuredResult):
            result = item
    assert result is not None
    return result.value, result.stats


def check_spans(result: DocumentResult) -> list[str]:
    """Pointers whose recorded span does not hold their string verbatim (empty: all do)."""
    bad = []
    for pointer, span in result.spans.items():
        leaf = resolve(result.value, pointer)
        if isinstance(leaf, str) and span is not None and result.text[span[0] : span[1]] != leaf:
            bad.append(pointer)
    return bad


__all__ = ["BatchProgress", "DocumentResult", "check_spans", "extract_many", "leaves"]
