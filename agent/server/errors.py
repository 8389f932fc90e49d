"""Errors in OpenAI's shape, with the status a client can act on.

`{"error": {"message", "type", "param", "code"}}`, as OpenAI's API and the servers that
copy it send it, so SDKs raise their usual exceptions (`BadRequestError`,
`AuthenticationError`, `RateLimitError`, ...). A user mistake is a 4xx that names what
is wrong; anything else is a 500 whose message names the exception, and the server
goes on serving.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agent.errors import UserError

INVALID_REQUEST = "invalid_request_error"


@dataclass
class APIError(Exception):
    """An error response: status, message and OpenAI's `type`, `param`, `code`."""

    status: int
    message: str
    type: str = INVALID_REQUEST
    param: str | None = None
    code: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


def bad_request(message: str, param: str | None = None, code: str | None = None) -> APIError:
    return APIError(400, message, INVALID_REQUEST, param, code)


def unauthorized() -> APIError:
    return APIError(
        401,
        "missing or incorrect API key: send 'Authorization: Bearer <key>' with the key the "
        "server was started with (--api-key or EDGE_AGENT_API_KEY)",
        INVALID_REQUEST,
        code="invalid_api_key",
        headers={"WWW-Authenticate": "Bearer"},
    )


def not_found(message: str, param: str | None = None) -> APIError:
    return APIError(404, message, INVALID_REQUEST, param, "model_not_found")


def queue_full(waiting: int, retry_after: int) -> APIError:
    return APIError(
        429,
        f"the server is busy: {waiting} request(s) are waiting for the model; retry after "
        f"{retry_after} s",
        "rate_limit_error",
        code="queue_full",
        headers={"Retry-After": str(retry_after)},
    )


def from_exception(exc: BaseException, param: str | None = None) -> APIError:
    """The response for an exception raised while serving a request."""
    if isinstance(exc, APIError):
        return exc
    if isinstance(exc, UserError):
        return bad_request(str(exc), param, _code(exc))
    return APIError(500, f"internal error: {type(exc).__name__}: {exc}", "server_error")


def _code(exc: UserError) -> str | None:
    from schemas.errors import (
        InvalidSchemaError,
        SchemaCompileError,
        UnsatisfiableSchemaError,
        UnsupportedSchemaError,
    )

    if isinstance(exc, UnsupportedSchemaError):
        return "unsupported_schema"
    if isinstance(exc, UnsatisfiableSchemaError):
        return "unsatisfiable_schema"
    if isinstance(exc, (InvalidSchemaError, SchemaCompileError)):
        return "invalid_schema"
    return None
