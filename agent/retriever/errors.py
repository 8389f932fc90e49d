"""Errors of the retriever; all are user-fixable, so the CLI prints one line, exit 2."""

from __future__ import annotations

from agent.errors import UserError

# How the README installs the `embeddings` extra (from a checkout); hints quote it.
EMBEDDINGS_INSTALL = 'pip install -e ".[embeddings]"'


class IndexNotFoundError(UserError):
    """No index at the given directory."""


class IndexCorruptError(UserError):
    """The index file exists but is not a readable edge-agent index."""


class IndexReadOnlyError(UserError):
    """The index can be searched but not written (a read-only file, directory or mount)."""


class IndexFullError(UserError):
    """The disk filled up during a write; the transaction was rolled back."""


class IndexBusyError(UserError):
    """Another process held the index's write lock for too long."""


class EmbeddingsUnavailableError(UserError):
    """Dense search asked of an index without vectors, or the model cannot be had."""
