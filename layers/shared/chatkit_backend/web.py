"""HTTP glue shared by the function apps: JSON errors, the auth dependency, the body limit.

Every error a client can see is ``{"detail": "..."}`` JSON with the right status (the ChatKit
client and the REST callers both parse it); nothing answers with an HTML page or an exception's
text. Only FastAPI/Starlette are imported here, so the CRUD functions stay cheap to start.

Order of installation (Starlette wraps the last added middleware outermost)::

    app = FastAPI()
    install_error_handlers(app)            # innermost: unhandled errors become 500 JSON
    app.add_middleware(NulCharacterMiddleware)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_request_bytes)
    app.add_middleware(RequestLogMiddleware)  # outermost: logs every request

CORS is not the function apps' job: deployed, the function URL answers it; locally, the dev
server wraps both apps once (``dev/cors.py``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .auth import Authenticator
from .caller import Caller
from .errors import AppError, AuthError, error_body
from .input_checks import NUL_MESSAGE
from .observability import bind_user, get_logger, request_id_for

INTERNAL_ERROR = "Internal error"
MAX_LISTED_VALIDATION_ERRORS = 5
THREAD_ID_HEADER = "X-Thread-Id"
REQUEST_ID_HEADER = "X-Request-Id"


# --- errors -------------------------------------------------------------------------------------


def app_error_response(exc: AppError) -> JSONResponse:
    """The response for an :class:`AppError` (401s carry ``WWW-Authenticate: Bearer``)."""
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, AuthError) else None
    return JSONResponse(
        error_body(exc.message, **exc.extra), status_code=exc.status_code, headers=headers
    )


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
    log_unhandled(exc)
    return internal_error_response()


class UnhandledErrorMiddleware:
    """Turns an exception that escaped every handler into a 500 ``{"detail": "Internal error"}``.

    Starlette's own last-resort handler sits outside all user middleware and re-raises, so its
    500s carry no CORS headers (the browser reports a CORS failure instead) and get logged twice.
    Installed innermost, this one answers inside CORS and the request log. After a response has
    started (a stream) nothing can be sent any more: the error is logged and the stream ends.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            log_unhandled(exc)
            if not started:
                await internal_error_response()(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    """JSON for every failure: AppError, 422 validation, HTTPException, and anything else (500)."""
    app.add_exception_handler(AppError, _on_app_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(HTTPException, _on_http_exception)
    app.add_exception_handler(Exception, _on_unhandled)  # failures in outer middleware
    app.add_middleware(UnhandledErrorMiddleware)


# --- auth dependency ----------------------------------------------------------------------------

_bearer_scheme = HTTPBearer(auto_error=False, description="JWT from the identity provider")


def current_user(authenticator: Authenticator) -> Callable[..., Awaitable[Caller]]:
    """A FastAPI dependency giving the authenticated :class:`Caller` (401 otherwise).

    ``user: Annotated[Caller, Depends(current_user(authenticator))]``. The bearer scheme
    parameter only documents the security requirement in OpenAPI; the raw header is what gets
    verified, so the error message can say exactly what is wrong with it.
    """

    async def authenticated_user(
        request: Request,
        _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer_scheme)],
    ) -> Caller:
        context = await authenticator.authenticate(
            request.headers.get("authorization"), request_id_for(request.scope)
        )
        bind_user(context.user_id)
        return context

    return authenticated_user


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


class BodySizeLimitMiddleware:
    """Answers 413 JSON when ``Content-Length`` or the streamed body exceeds ``max_bytes``.

    The declared length is checked before the app runs (no auth, no parsing); chunked or lying
    bodies are cut off while they stream, so the app never buffers more than the limit.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._reject(scope, receive, send, declared.isdigit())
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except Exception as exc:
            if started or not _only_body_too_large(exc):
                raise
            await self._reject(scope, receive, send, too_large=True)

    async def _reject(self, scope: Scope, receive: Receive, send: Send, too_large: bool) -> None:
        if too_large:
            body, status = error_body(BodyTooLarge().detail), 413
        else:
            body, status = error_body("Invalid Content-Length"), 400
        await JSONResponse(body, status_code=status)(scope, receive, send)


class NulCharacterMiddleware:
    """Answers 400 JSON when the path or the query string holds a NUL (``%00``).

    PostgreSQL cannot compare or store it, so an id or a message carrying one would fail inside a
    query; bodies are checked where they are parsed (see :mod:`chatkit_backend.input_checks`).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (
            "\x00" in scope["path"] or b"%00" in scope.get("query_string", b"")
        ):
            response = JSONResponse(error_body(NUL_MESSAGE), status_code=400)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
