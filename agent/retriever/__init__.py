"""Retrieval (RAG): ingest documents into a local index and search it.

    from agent.retriever import ingest, open_index

    ingest(["docs/"], "my-index")                      # token-aware chunks in SQLite
    with open_index("my-index") as index:              # bm25 by default
        for hit in index.search("how do I reset it?", k=5):
            print(hit.path, hit.start, hit.end, hit.score)

Everything that answers `search(query, k) -> list[SearchHit]` is a `Retriever`, so
the agent can use this index, a `HybridRetriever`, or an adapter to a search engine.
"""

from __future__ import annotations

from agent.retriever.errors import (
    EmbeddingsUnavailableError,
    IndexBusyError,
    IndexCorruptError,
    IndexNotFoundError,
)
from agent.retriever.hybrid import HybridRetriever, reciprocal_rank_fusion
from agent.retriever.index import SEARCH_MODES, Index, SearchMode, default_index_dir, open_index
from agent.retriever.ingest import IngestSummary, ingest
from agent.retriever.protocol import Retriever, SearchHit

__all__ = [
    "SEARCH_MODES",
    "EmbeddingsUnavailableError",
    "HybridRetriever",
    "Index",
    "IndexBusyError",
    "IndexCorruptError",
    "IndexNotFoundError",
    "IngestSummary",
    "Retriever",
    "SearchHit",
    "SearchMode",
    "default_index_dir",
    "ingest",
    "open_index",
    "reciprocal_rank_fusion",
]
