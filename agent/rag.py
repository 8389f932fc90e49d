"""Retrieval as a tool: `rag_search` over an index, with numbered sources to cite.

Every passage a run retrieves gets a number that stays the same for the whole run
(the same chunk found twice keeps its number), the tool result shows passages as
`[n] path:start-end`, and the final event lists every numbered source
(`FinalEvent.citations`), so an answer's `[n]` always resolves to a passage.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from agent.events import Citation
from agent.tracing import Tracing
from agent.tracing.operations import retrieval_span

RAG_TOOL_NAME = "rag_search"
DEFAULT_K = 4
MAX_PASSAGE_CHARS = 1200


class SearchHitLike(Protocol):
    path: str
    start: int
    end: int
    score: float
    text: str
    chunk_id: Any


class RetrieverLike(Protocol):
    def search(self, query: str, k: int) -> list[Any]: ...


class CitationBook:
    """The sources of one run, numbered from 1 in the order they were first retrieved."""

    def __init__(self) -> None:
        self._by_key: dict[Any, Citation] = {}

    def reset(self) -> None:
        self._by_key.clear()

    def add(self, hit: SearchHitLike) -> Citation:
        key = getattr(hit, "chunk_id", None) or (hit.path, hit.start, hit.end)
        citation = self._by_key.get(key)
        if citation is None:
            citation = Citation(
                index=len(self._by_key) + 1,
                path=str(hit.path),
                start=int(hit.start),
                end=int(hit.end),
                score=float(hit.score),
                text=str(hit.text),
            )
            self._by_key[key] = citation
        return citation

    def citations(self) -> tuple[Citation, ...]:
        return tuple(sorted(self._by_key.values(), key=lambda c: c.index))


def format_hits(citations: list[Citation]) -> str:
    if not citations:
        return "No passages matched the query."
    blocks = []
    for c in citations:
        text = c.text if len(c.text) <= MAX_PASSAGE_CHARS else c.text[:MAX_PASSAGE_CHARS] + "..."
        blocks.append(f"[{c.index}] {c.path}:{c.start}-{c.end}\n{text}")
    return "\n\n".join(blocks)


# Bounded so a constrained call cannot spend the whole budget on one query string.
_QUERY_SCHEMA = {
    "type": "object",
    "properties": {"query": {"type": "string", "minLength": 1, "maxLength": 200}},
    "required": ["query"],
    "additionalProperties": False,
}


def rag_search_tool(
    retriever: RetrieverLike,
    book: CitationBook | None = None,
    k: int = DEFAULT_K,
    tracing: Tracing | None = None,
) -> Any:
    """The `rag_search` tool bound to `retriever`, numbering sources in `book` (without
    one, each call numbers its own from 1: `edge-agent mcp-serve` has no runs); each
    search is a `retrieval` span (agent.tracing)."""
    spans = tracing or Tracing()
    from tools import tool

    @tool(name=RAG_TOOL_NAME, schema=_QUERY_SCHEMA)
    async def rag_search(query: str) -> str:
        """Search the user's indexed documents for passages relevant to a query.

        Args:
            query: what to look for, in a few words.
        """
        with retrieval_span(spans, query, k) as record:
            hits = await asyncio.to_thread(retriever.search, query, k)
            record.hits(len(hits), max((float(h.score) for h in hits), default=None))
        numbering = book if book is not None else CitationBook()
        return format_hits([numbering.add(hit) for hit in hits])

    return rag_search
