"""Keyword search: SQLite FTS5 ranked by bm25.

User queries are free text, not FTS5 syntax: each word becomes a quoted term (so
quotes, hyphens, AND/NOT or a stray colon cannot break the query) and terms are
OR-ed, letting bm25 rank chunks that contain more and rarer terms first. Common
English function words are dropped when a query has other terms: they carry almost
no bm25 weight but would make FTS5 score nearly every chunk.
"""

from __future__ import annotations

import re
import sqlite3

_WORD = re.compile(r"\w+")
MAX_TERMS = 32
STOPWORDS = frozenset(
    """a an and are as at be but by did do does for from had has have how i if in into is
    it its me my no not of on or our so than that the their them then there these they
    this to was we were what when where which who whom why will with you your""".split()
)


def fts_query(text: str) -> str | None:
    """An FTS5 MATCH expression for free text, or None when it has no words."""
    words = [w.lower() for w in _WORD.findall(text)]
    content = [w for w in words if w not in STOPWORDS] or words
    terms = list(dict.fromkeys(content))[:MAX_TERMS]
    if not terms:
        return None
    return " OR ".join(f'"{t}"' for t in terms)


def bm25_search(conn: sqlite3.Connection, query: str, k: int) -> list[tuple[int, float]]:
    """(chunk id, score) best first; score is -bm25, so higher is better."""
    match = fts_query(query)
    if match is None:
        return []
    rows = conn.execute(
        "SELECT rowid, bm25(chunks_fts) AS rank FROM chunks_fts WHERE chunks_fts MATCH ? "
        "ORDER BY rank LIMIT ?",
        (match, k),
    )
    return [(int(rowid), -float(rank)) for rowid, rank in rows]
