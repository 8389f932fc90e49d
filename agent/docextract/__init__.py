"""Extraction at document scale: many files, long documents, spans, a review page."""

from __future__ import annotations

from agent.docextract.batch import BatchProgress, DocumentResult, check_spans, extract_many
from agent.docextract.sources import Text

__all__ = ["BatchProgress", "DocumentResult", "Text", "check_spans", "extract_many"]
