"""HTTP glue both function apps install: JSON errors, the auth dependency, input limits.

Every error a client can see is ``{"detail": "..."}`` JSON with its status; nothing answers with
an HTML page or an exception's text. Middleware order (the last added is outermost): error
handlers, then :class:`InputGuardMiddleware`, :class:`BodySizeLimitMiddleware`,
:class:`AuthenticateFirstMiddleware` (no body is read before the caller is known), and the
request log outermost. CORS is the function URL's job when deployed and ``dev/cors.py``'s locally.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any
from urllib.parse import unquote_to_bytes

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPBearer
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .auth import Authenticator
from .caller import Caller
from .errors import AppError, DatabaseUnavailable, error_body
from .input_checks import ENCODING_MESSAGE, NUL_MESSAGE, body_problem
from .observability import HttpMiddleware, ResponseWatcher, bind_user, get_logger, request_id_for

INTERNAL_ERROR = "Internal error"
MAX_LISTED_VALIDATION_ERRORS = 5
THREAD_ID_HEADER = "X-Thread-Id"
REQUEST_ID_HEADER = "X-Request-Id"


# --- errors -------------------------------------------------------------------------------------


def app_error_response(exc: AppError) -> JSONResponse:
    """The response for an :class:`AppError`, with its headers (``WWW-Authenticate``, ...)."""
    return JSONResponse(
        error_body(exc.message, **exc.extra),
        status_code=exc.status_code,
        headers=exc.response_headers(),
    )


def database_outage(exc: BaseException) -> DatabaseUnavailable | None:
    """The 503 for an error that means "the database cannot be reached", else None.

    Connection failures, dropped connections and pool timeouts are outages (a retry may work);
    any other database error is a bug and stays a 500. Exception groups (task groups) count
    when every error in them is an outage.
    """
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    if isinstance(exc, BaseExceptionGroup):
        leaves = exc.exceptions
        return DatabaseUnavailable() if all(database_outage(e) for e in leaves) else None
    outage = isinstance(exc, OperationalError | InterfaceError | PoolTimeout) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated
    )
    return DatabaseUnavailable() if outage else None


def _answer_outage(exc: BaseException) -> JSONResponse | None:
    """One concise log line (no traceback: an outage floods the log otherwise) and the 503."""
    unavailable = database_outage(exc)
    if unavailable is None:
        return None
    get_logger().warning("database unavailable: %s", type(exc).__name__)
    return app_error_response(unavailable)


def internal_error_response() -> JSONResponse:
    return JSONResponse(error_body(INTERNAL_ERROR), status_code=500)


def validation_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """Pydantic/FastAPI errors reduced to JSON-safe ``{loc, msg, type}`` (inputs not echoed)."""
    return [
        {
            "loc": [part if isinstance(part, int) else str(part) for part in error.get("loc", ())],
            "msg": str(error.get("msg", "")),
            "type": str(error.get("type", "")),
        }
        for error in errors
    ]


def validation_summary(errors: Sequence[dict[str, Any]]) -> str:
    """``"body.title: String should have at most 200 characters; ..."`` (first few errors)."""
    parts = [
        f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}"
        if error["loc"]
        else error["msg"]
        for error in errors[:MAX_LISTED_VALIDATION_ERRORS]
    ]
    if len(errors) > MAX_LISTED_VALIDATION_ERRORS:
        parts.append(f"and {len(errors) - MAX_LISTED_VALIDATION_ERRORS} more")
    return "; ".join(parts) or "Invalid request"


async def _on_app_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AppError)
    return app_error_response(exc)


async def _on_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = validation_errors(exc.errors())
    return JSONResponse({"detail": validation_summary(errors), "errors": errors}, status_code=422)


async def _on_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code in (204, 304):  # no body allowed
        return Response(status_code=exc.status_code, headers=exc.headers)
    return JSONResponse(
        error_body(str(exc.detail)), status_code=exc.status_code, headers=exc.headers
    )


def log_unhandled(exc: BaseException) -> None:
    """Log an unexpected exception with its stack (the client only sees "Internal error")."""
    get_logger().error("unhandled %s", type(exc).__name__, exc_info=exc)


async def _on_unhandled(request: Request, exc: Exception) -> Response:
    outage = _answer_outage(exc)
    if outage is not None:
        return outage
    log_unhandled(exc)
    return internal_error_response()


class UnhandledErrorMiddleware(HttpMiddleware):
    """Turns an exception that escaped every handler into a 500 ``{"detail": "Internal error"}``.

    Starlette's own last-resort handler sits outside all user middleware and re-raises, so its
    500s carry no CORS headers (the browser reports a CORS failure instead) and get logged twice.
    Installed innermost, this one answers inside CORS and the request log. After a response has
    started (a stream) nothing can be sent any more: the error is logged and the stream ends.
    """

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = ResponseWatcher(send)
        try:
            await self.app(scope, receive, response)
        except Exception as exc:
            if response.started:
                log_unhandled(exc)
                return
            answer = _answer_outage(exc)
            if answer is None:
                log_unhandled(exc)
                answer = internal_error_response()
            await answer(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    """JSON for every failure: AppError, 422 validation, HTTPException, and anything else (500)."""
    app.add_exception_handler(AppError, _on_app_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(HTTPException, _on_http_exception)
    app.add_exception_handler(Exception, _on_unhandled)  # failures in outer middleware
    app.add_middleware(UnhandledErrorMiddleware)


# --- auth dependency ----------------------------------------------------------------------------


EDGE_AUTHORIZATION_HEADER = "x-chat-authorization"
"""Where clients behind the optional edge stack (``infra/edge.yaml``) send their bearer token:
CloudFront's origin access control signs each request in ``Authorization`` itself."""


def credentials(headers: Headers) -> str | None:
    """The bearer credentials of a request: :data:`EDGE_AUTHORIZATION_HEADER` when present,
    else ``Authorization`` (both verified the same way)."""
    return headers.get(EDGE_AUTHORIZATION_HEADER) or headers.get("authorization")


class _BearerHeader(HTTPBearer):
    """FastAPI's bearer scheme for OpenAPI, handing on the raw header: the authenticator parses it
    once, with its own refusal messages."""

    async def __call__(self, request: Request) -> str | None:  # type: ignore[override]
        return credentials(request.headers)


_bearer_scheme = _BearerHeader(
    scheme_name="HTTPBearer", description="JWT from the identity provider"
)


def current_user(authenticator: Authenticator) -> Callable[..., Awaitable[Caller]]:
    """A FastAPI dependency giving the authenticated :class:`Caller` (401 otherwise).

    ``user: Annotated[Caller, Depends(current_user(authenticator))]``. A request that
    :class:`AuthenticateFirstMiddleware` authenticated already is not verified twice.
    """

    async def authenticated_user(
        request: Request, authorization: Annotated[str | None, Depends(_bearer_scheme)]
    ) -> Caller:
        caller = request.scope.get("state", {}).get(CALLER_STATE)
        if not isinstance(caller, Caller):
            caller = await authenticator.authenticate(authorization, request_id_for(request.scope))
        bind_user(caller.user_id)
        return caller

    return authenticated_user


CALLER_STATE = "authenticated_caller"
"""Where :class:`AuthenticateFirstMiddleware` leaves the caller in the request's state."""

BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class AuthenticateFirstMiddleware(HttpMiddleware):
    """Answers 401 to a request with a body whose credentials fail, before reading any of it.

    Installed outside the body limit and the input guard, so an unauthenticated client cannot
    make the function receive or scan a body at all; the authenticated caller is handed on in
    the request state for :func:`current_user`. ``open_paths`` (the SnapStart hooks, which
    check their caller themselves) are let through.
    """

    def __init__(
        self, app: ASGIApp, authenticator: Authenticator, open_paths: Sequence[str] = ()
    ) -> None:
        super().__init__(app)
        self.authenticator = authenticator
        self.open_paths = frozenset(open_paths)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] in BODY_METHODS and scope["path"] not in self.open_paths:
            authorization = credentials(Headers(scope=scope))
            try:
                caller = await self.authenticator.authenticate(authorization, request_id_for(scope))
            except AppError as exc:
                await app_error_response(exc)(scope, receive, send)
                return
            scope.setdefault("state", {})[CALLER_STATE] = caller
        await self.app(scope, receive, send)


# --- body size limit ----------------------------------------------------------------------------


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` once the body passes the limit.

    An HTTPException so that FastAPI's body parsing re-raises it instead of turning it into
    "400 error parsing the body"; the middleware (or the HTTPException handler) answers 413.
    """

    def __init__(self) -> None:
        super().__init__(status_code=413, detail="Request body too large")


def _only_body_too_large(exc: BaseException) -> bool:
    if isinstance(exc, BaseExceptionGroup):
        return exc.split(BodyTooLarge)[1] is None
    return isinstance(exc, BodyTooLarge)


class BodySizeLimitMiddleware(HttpMiddleware):
    """Answers 413 JSON when ``Content-Length`` or the streamed body exceeds ``max_bytes``.

    The declared length is checked before the app runs (no auth, no parsing); chunked or lying
    bodies are cut off while they stream, so the app never buffers more than the limit.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        super().__init__(app)
        self.max_bytes = max_bytes

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._reject(scope, receive, send, declared.isdigit())
            return
        received = 0
        response = ResponseWatcher(send)

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge
            return message

        try:
            await self.app(scope, limited_receive, response)
        except Exception as exc:
            if response.started or not _only_body_too_large(exc):
                raise
            await self._reject(scope, receive, send, too_large=True)

    async def _reject(self, scope: Scope, receive: Receive, send: Send, too_large: bool) -> None:
        if too_large:
            body, status = error_body(BodyTooLarge().detail), 413
        else:
            body, status = error_body("Invalid Content-Length"), 400
        await JSONResponse(body, status_code=status)(scope, receive, send)


class InputGuardMiddleware(HttpMiddleware):
    """Answers 400 JSON for input no route may see (see :mod:`chatkit_backend.input_checks`).

    Checked before the app runs, so nothing is stored, streamed or even authenticated: a NUL
    in the path, a query string that is not UTF-8 once percent-decoded or holds a NUL, and a
    body with NUL, unpaired surrogates, nesting past the limit or bytes that are not UTF-8.
    The body (already bounded by :class:`BodySizeLimitMiddleware`, installed outside this one)
    is read once, then handed to the app unchanged; ``receive`` after that is the client's
    own again, so disconnects still reach a streaming response.
    """

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        problem = _url_problem(scope)
        replay: Receive = receive
        if problem is None and scope["method"] in ("POST", "PUT", "PATCH"):
            body = await _read_body(receive)
            problem = body_problem(body) if body else None
            replay = _replaying(body, receive)
        if problem is not None:
            await JSONResponse(error_body(problem), status_code=400)(scope, receive, send)
            return
        await self.app(scope, replay, send)


def _url_problem(scope: Scope) -> str | None:
    if "\x00" in scope["path"]:
        return NUL_MESSAGE
    query = unquote_to_bytes(scope.get("query_string", b"").replace(b"+", b" "))
    if b"\x00" in query:
        return NUL_MESSAGE
    try:
        query.decode("utf-8")
    except UnicodeDecodeError:
        return ENCODING_MESSAGE
    return None


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away while sending
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replaying(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives ``body`` once, then defers to the client's."""
    pending = True

    async def replay() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
