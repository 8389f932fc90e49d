"""Hybrid ranking: reciprocal rank fusion (Cormack et al., 2009).

RRF needs only ranks, so it fuses bm25 scores and cosine similarities (or results
of any two `Retriever`s, local or remote) without calibrating their scales:
score(d) = sum over rankings of 1 / (K + rank_d), with K = 60 as in the paper.
"""

from __future__ import annotations

from collections.abc import Sequence

from agent.retriever.protocol import Retriever, SearchHit

RRF_K = 60


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[SearchHit]], k: int, rrf_k: int = RRF_K
) -> list[SearchHit]:
    """The top `k` of the fused rankings; a hit's identity is (path, start, end), so
    the same chunk from different retrievers counts once."""
    scores: dict[tuple[str, int, int], float] = {}
    first: dict[tuple[str, int, int], SearchHit] = {}
    for ranking in rankings:
        for rank, hit in enumerate(ranking, start=1):
            key = (hit.path, hit.start, hit.end)
            scores[key] = scores.get(key, 0.0) + 1.0 / (rrf_k + rank)
            first.setdefault(key, hit)
    order = sorted(scores, key=lambda key: (-scores[key], key))
    return [
        SearchHit(
            path=first[key].path,
            start=first[key].start,
            end=first[key].end,
            score=scores[key],
            text=first[key].text,
            chunk_id=first[key].chunk_id,
        )
        for key in order[:k]
    ]


class HybridRetriever:
    """Fuses several retrievers; each is asked for `depth` candidates."""

    def __init__(self, retrievers: Sequence[Retriever], depth: int = 50, rrf_k: int = RRF_K):
        if not retrievers:
            raise ValueError("a hybrid retriever needs at least one retriever")
        self.retrievers = list(retrievers)
        self.depth = depth
        self.rrf_k = rrf_k

    def search(self, query: str, k: int = 5) -> list[SearchHit]:
        depth = max(self.depth, k)
        rankings = [r.search(query, depth) for r in self.retrievers]
        return reciprocal_rank_fusion(rankings, k, self.rrf_k)
