"""Error types shared by the functions, mapped to HTTP responses at the edges.

Each carries the HTTP status and a message that is safe to show to the client (never a secret,
never a stack trace); :func:`error_body` gives the JSON shape every function answers with.
"""

from __future__ import annotations

from typing import Any, ClassVar


class AppError(Exception):
    """Base class: an error with an HTTP status and a client-safe message."""

    status_code: int = 500
    default_message: str = "Internal error"
    headers: ClassVar[dict[str, str]] = {}

    def __init__(self, message: str | None = None, **extra: Any) -> None:
        self.message = message or self.default_message
        self.extra = extra
        super().__init__(self.message)

    def response_headers(self) -> dict[str, str]:
        """The headers of the response (the class's, plus any this instance adds)."""
        return dict(self.headers)


class AuthError(AppError):
    """Missing, malformed, expired or otherwise unacceptable credentials."""

    status_code = 401
    default_message = "Not authenticated"
    headers: ClassVar[dict[str, str]] = {"WWW-Authenticate": "Bearer"}


class NotFound(AppError):
    """Missing and foreign rows alike (a foreign id must look exactly like a missing one)."""

    status_code = 404
    default_message = "Not found"


class BadRequest(AppError):
    status_code = 400
    default_message = "Bad request"


class Conflict(AppError):
    """The request is valid but the resource's state refuses it (e.g. a locked thread)."""

    status_code = 409
    default_message = "Conflict"


class PayloadTooLarge(AppError):
    status_code = 413
    default_message = "Request too large"


class TooManyRequests(AppError):
    """A per-user limit refused the request for now; ``Retry-After`` says when to try again."""

    status_code = 429
    default_message = "Too many requests"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = max(retry_after, 1)

    def response_headers(self) -> dict[str, str]:
        return {**self.headers, "Retry-After": str(self.retry_after)}


class NotSupported(AppError):
    """A request this deployment does not serve, or its provider cannot (501)."""

    status_code = 501
    default_message = "Not supported by this server"


class Unavailable(AppError):
    """Something this server relies on cannot be reached or is overloaded right now (503)."""

    status_code = 503
    default_message = "Unavailable right now. Please retry shortly."
    headers: ClassVar[dict[str, str]] = {"Retry-After": "5"}


class DatabaseUnavailable(Unavailable):
    """The database cannot be reached right now (down, failing over, out of connections)."""

    default_message = "The database is unavailable right now. Please retry shortly."


class ConfigurationError(RuntimeError):
    """The process is configured in a way it must refuse to run with (raised at start)."""


def error_body(message: str, **extra: Any) -> dict[str, Any]:
    """The JSON body of every error response: ``{"detail": message, ...}``."""
    return {"detail": message, **extra}
