"""Errors a user can fix.

Every error raised for a user mistake derives from `UserError`; the CLI prints its
message on one line and exits with code 2, never with a traceback.
"""

from __future__ import annotations


class EdgeAgentError(Exception):
    """Base class for all errors raised by edge-agent."""


class UserError(EdgeAgentError):
    """Bad input: an unknown model, a bad file, an invalid flag value."""


class ModelNotFoundError(UserError):
    """A model spec that names nothing we can load."""


class ModelUnavailableError(UserError):
    """A hub model that cannot be had right now (offline, not cached)."""
