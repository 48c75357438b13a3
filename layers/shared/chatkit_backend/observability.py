"""Powertools logger, metrics and tracer, plus the per-request correlation context.

``logger``, ``metrics`` and ``tracer`` are created on first access (PEP 562): the logger and
above all the tracer are costly imports, which a CRUD cold start must not pay unless it uses
them. :class:`RequestLogMiddleware` gives each request a correlation id and one JSON log
line; every line written during the request carries it (and ``user_id`` once known). Bodies,
headers and query strings are never logged: they carry tokens and message text.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .ids import new_id

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger, Metrics, Tracer
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    logger: Logger
    metrics: Metrics
    tracer: Tracer

SERVICE_NAME = os.environ.get("POWERTOOLS_SERVICE_NAME") or "chatkit-backend"
METRICS_NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "ChatKitBackend"

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


# --- per-request context ------------------------------------------------------------------------


@dataclass(slots=True)
class RequestState:
    """What every log line of one request carries."""

    request_id: str
    user_id: str | None = None


_current: contextvars.ContextVar[RequestState | None] = contextvars.ContextVar(
    "chatkit_backend_request", default=None
)


def bind_user(user_id: str) -> None:
    """Tag the current request's log lines with ``user_id`` (a no-op outside a request)."""
    state = _current.get()
    if state is not None:
        state.user_id = user_id


def _valid_id(value: Any) -> str | None:
    return value if isinstance(value, str) and _REQUEST_ID.match(value) else None


def request_id_from_scope(scope: Scope) -> str:
    """The platform's request id, else the caller's ``X-Request-Id``, else a new one.

    Mangum puts the function URL event in ``scope["aws.event"]``; the Lambda Web Adapter passes
    the request context as the ``x-amzn-request-context`` header. Values that do not look like
    ids are ignored, so a client cannot inject arbitrary text into the logs.
    """
    event = scope.get("aws.event")
    if isinstance(event, dict):
        found = _valid_id((event.get("requestContext") or {}).get("requestId"))
        if found:
            return found
    headers = {
        name.decode("latin-1").lower(): value.decode("latin-1")
        for name, value in scope.get("headers", ())
    }
    if "x-amzn-request-context" in headers:
        try:
            found = _valid_id(json.loads(headers["x-amzn-request-context"]).get("requestId"))
        except (ValueError, AttributeError):
            found = None
        if found:
            return found
    for name in ("x-amzn-requestid", "x-request-id"):
        found = _valid_id(headers.get(name))
        if found:
            return found
    return new_id("req")


def request_id_for(scope: Scope) -> str:
    """The current request's correlation id (the middleware's), or one derived from ``scope``."""
    state = _current.get()
    return state.request_id if state is not None else request_id_from_scope(scope)


class _RequestFieldsFilter(logging.Filter):
    """Adds ``correlation_id`` / ``user_id`` of the current request to each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        state = _current.get()
        if state is not None:
            record.correlation_id = state.request_id
            if state.user_id is not None:
                record.user_id = state.user_id
        return True


# --- Powertools singletons ----------------------------------------------------------------------

_logger: Logger | None = None
_metrics: Metrics | None = None
_tracer: Tracer | None = None


def get_logger() -> Logger:
    """The service's JSON logger (``LOG_LEVEL`` / ``POWERTOOLS_LOG_LEVEL`` set its level)."""
    global _logger
    if _logger is None:
        from aws_lambda_powertools import Logger

        created = Logger(service=SERVICE_NAME)
        created.registered_handler.addFilter(_RequestFieldsFilter())
        _logger = created
    return _logger


def get_metrics() -> Metrics:
    """CloudWatch EMF metrics; :class:`RequestLogMiddleware` flushes them after each request."""
    global _metrics
    if _metrics is None:
        from aws_lambda_powertools import Metrics

        _metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE_NAME)
    return _metrics


def get_tracer() -> Tracer:
    """X-Ray tracer (disabled outside Lambda). No auto-patching: behind the Lambda Web Adapter
    there is no invocation segment for patched libraries to attach to."""
    global _tracer
    if _tracer is None:
        from aws_lambda_powertools import Tracer

        _tracer = Tracer(service=SERVICE_NAME, auto_patch=False)
    return _tracer


_LAZY: dict[str, Callable[[], Any]] = {
    "logger": get_logger,
    "metrics": get_metrics,
    "tracer": get_tracer,
}


def __getattr__(name: str) -> Any:
    factory = _LAZY.get(name)
    if factory is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return factory()


def flush_metrics() -> None:
    """Publish the metrics recorded so far (nothing when none were, or Metrics was never used)."""
    if _metrics is not None and _metrics.metric_set:
        _metrics.flush_metrics()


# --- middleware ---------------------------------------------------------------------------------


class ResponseWatcher:
    """An ASGI ``send`` that records the response status as it passes (None: not started yet).

    Middleware uses it to know whether an error can still be answered, and what was answered;
    ``extra_headers`` are added to the response start.
    """

    def __init__(self, send: Send, extra_headers: list[tuple[bytes, bytes]] | None = None) -> None:
        self._send = send
        self._extra_headers = extra_headers or []
        self.status: int | None = None

    @property
    def started(self) -> bool:
        return self.status is not None

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            if self._extra_headers:
                headers = [*message.get("headers", ()), *self._extra_headers]
                message = {**message, "headers": headers}
        await self._send(message)


class HttpMiddleware:
    """Pure ASGI middleware for HTTP requests: other scopes (lifespan) pass straight through."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self.handle(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """One HTTP request."""
        raise NotImplementedError


class RequestLogMiddleware(HttpMiddleware):
    """Correlation id for each HTTP request, an ``X-Request-Id`` response header, one log line
    per request, and the metrics flushed when it ends (Lambda Web Adapter has no handler
    decorator to do it)."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = RequestState(request_id=request_id_from_scope(scope))
        token = _current.set(state)
        started_at = time.perf_counter()
        response = ResponseWatcher(send, [(b"x-request-id", state.request_id.encode())])
        try:
            await self.app(scope, receive, response)
        finally:
            get_logger().info(
                "request",
                extra={
                    "method": scope.get("method"),
                    "path": scope.get("path"),
                    # 500: what the client gets if the app raised before answering
                    "status": response.status or 500,
                    "duration_ms": round((time.perf_counter() - started_at) * 1000, 2),
                },
            )
            flush_metrics()
            _current.reset(token)
