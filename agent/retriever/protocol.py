"""The retriever contract: what the agent loop, the CLI and other stores share.

Anything that can answer `search(query, k)` with `SearchHit`s is a `Retriever`: the
local SQLite index, a hybrid of several retrievers, or an adapter to an existing
search engine (OpenSearch, Elasticsearch, Postgres + pgvector) for deployments that
outgrow one machine.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class SearchHit:
    """One retrieved chunk.

    `start`/`end` are character offsets of the chunk in the document's extracted text
    (for text and code files: the file's decoded text). `score` is higher-is-better and
    only comparable within one result list (bm25, cosine similarity or fused rank).
    """

    path: str
    start: int
    end: int
    score: float
    text: str
    chunk_id: int

    def to_dict(self) -> dict:
        return asdict(self)


@runtime_checkable
class Retriever(Protocol):
    """A ranked search over chunks of documents."""

    def search(self, query: str, k: int = 5) -> list[SearchHit]:
        """The `k` best chunks for `query`, best first; fewer if fewer match."""
        ...
