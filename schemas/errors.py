"""Why a schema cannot be turned into a grammar, said so a user can act on it."""

from __future__ import annotations

from agent.errors import UserError


class SchemaCompileError(UserError):
    """Base class: the schema was rejected before any token was generated."""

    def __init__(self, message: str, path: str = "#") -> None:
        self.path = path
        super().__init__(f"{message} (at {path})" if path and path != "#" else message)


class InvalidSchemaError(SchemaCompileError):
    """Not a valid JSON Schema (fails its meta-schema) or not JSON at all."""


class UnsupportedSchemaError(SchemaCompileError):
    """Valid, but uses a construct the grammar cannot guarantee; names the construct."""

    def __init__(self, construct: str, path: str = "#", detail: str = "") -> None:
        self.construct = construct
        message = f"unsupported schema construct '{construct}'"
        if detail:
            message += f": {detail}"
        super().__init__(message, path)


class UnsatisfiableSchemaError(SchemaCompileError):
    """No JSON value satisfies the schema (e.g. minimum > maximum, empty enum)."""
