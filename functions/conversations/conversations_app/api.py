"""The conversations API: routes that parse the request, call the service and return its model.

The operations live in :mod:`conversations_app.service`; this module is the HTTP shape only, so
the OpenAPI document (``/openapi.json``, ``/docs``) is generated from the same pydantic models
the routes return. Errors are ``{"detail": ...}`` JSON through :mod:`chatkit_backend.web`.

CORS is not added here: a deployed function gets it from its function URL configuration (two
layers adding ``Access-Control-Allow-Origin`` would make browsers reject the response); the
local dev server adds it around the apps it serves.
"""

# No ``from __future__ import annotations``: the route signatures use dependency aliases built
# inside :func:`conversations_router`, which FastAPI can only see as evaluated annotations.

from typing import Annotated, Any

from chatkit_backend import observability
from chatkit_backend.attachments import AttachmentFiles, install_local_attachment_routes
from chatkit_backend.auth import Authenticator
from chatkit_backend.caller import Caller
from chatkit_backend.db import Database, get_database
from chatkit_backend.paging import MAX_PAGE_SIZE
from chatkit_backend.settings import Settings, get_settings
from chatkit_backend.web import (
    AuthenticateFirstMiddleware,
    BodySizeLimitMiddleware,
    InputGuardMiddleware,
    current_user,
    install_error_handlers,
)
from fastapi import APIRouter, Depends, FastAPI, Path, Query, Response, status

from .cursors import MAX_CURSOR_CHARS
from .schemas import (
    AccountExport,
    Conversation,
    ConversationPage,
    ConversationWithMessages,
    CreateConversation,
    DeletedConversation,
    ErasedAccount,
    ErrorBody,
    Health,
    MessagePage,
    RenameConversation,
    ValidationErrorBody,
)
from .service import (
    DEFAULT_CONVERSATIONS_PAGE,
    DEFAULT_MESSAGES_PAGE,
    AccountService,
    ConversationService,
    EraseUserBytes,
)

MAX_OFFSET = 100_000
"""Offset paging scans every skipped row; deeper than this, the cursor (``after``) is the way."""


REFUSED_INPUT = (
    "Input no route accepts: a body or query that is not UTF-8, NUL characters, unpaired "
    "surrogates, JSON nested too deep"
)
ALWAYS_POSSIBLE: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": REFUSED_INPUT},
    413: {"model": ErrorBody, "description": "Request body too large"},
}
"""What the shared middleware answers on any route, before the route runs."""


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for every error answer a route can give (all ``{"detail": ...}``)."""
    responses: dict[int | str, dict[str, Any]] = {
        **ALWAYS_POSSIBLE,
        401: {"model": ErrorBody, "description": "Missing or invalid bearer token"},
        422: {"model": ValidationErrorBody, "description": "Invalid parameters or body"},
        503: {
            "model": ErrorBody,
            "description": "Database unavailable; retry after `Retry-After` seconds",
            "headers": {"Retry-After": {"schema": {"type": "integer"}}},
        },
    }
    described = {
        400: f"Invalid cursor or paging mode. {REFUSED_INPUT}",
        404: "Conversation not found",
    }
    for code in codes:
        responses[code] = {"model": ErrorBody, "description": described[code]}
    return responses


def conversations_router(service: ConversationService, authenticator: Authenticator) -> APIRouter:
    """The ``/api/conversations`` routes (the dev server mounts the same router)."""
    router = APIRouter(prefix="/api/conversations", tags=["conversations"])
    User = Annotated[Caller, Depends(current_user(authenticator))]
    ConversationId = Annotated[str, Path(description="The conversation (ChatKit thread) id")]
    Limit = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Page size")]
    After = Annotated[
        str | None,
        Query(
            description="`next_cursor` of the previous page (exclusive)",
            min_length=1,
            max_length=MAX_CURSOR_CHARS,
            pattern=r"^[A-Za-z0-9_-]+$",
        ),
    ]

    @router.get("", response_model=ConversationPage, responses=_errors(400))
    async def list_conversations(
        user: User,
        limit: Limit = DEFAULT_CONVERSATIONS_PAGE,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Rows to skip")] = 0,
        after: After = None,
    ) -> ConversationPage:
        """The caller's conversations, most recently updated first.

        Page with `offset`, or with `after` set to the previous page's `next_cursor`: a cursor
        page costs the same however deep it is. `offset` and `after` cannot be combined.
        """
        return await service.list(user, limit=limit, offset=offset, after=after)

    @router.post(
        "",
        response_model=Conversation,
        status_code=status.HTTP_201_CREATED,
        responses=_errors(),
    )
    async def create_conversation(
        user: User, body: CreateConversation | None = None
    ) -> Conversation:
        """Create an empty conversation (title optional: trimmed, 1 to 200 characters)."""
        created = await service.create(user, body.title if body else None)
        _count("ConversationCreated")
        return created

    # Declared before ``/{conversation_id}...`` so "recent" is never taken for an id.
    @router.get("/recent/first", response_model=Conversation | None, responses=_errors())
    async def most_recent_conversation(user: User) -> Conversation | None:
        """The most recently updated conversation, or `null` when there is none."""
        return await service.most_recent(user)

    @router.get(
        "/{conversation_id}", response_model=ConversationWithMessages, responses=_errors(404)
    )
    async def get_conversation(
        user: User, conversation_id: ConversationId, limit: Limit = DEFAULT_MESSAGES_PAGE
    ) -> ConversationWithMessages:
        """The conversation with its first `limit` messages, oldest first; `next_cursor`
        continues on the messages route."""
        return await service.get(user, conversation_id, limit=limit)

    @router.get(
        "/{conversation_id}/messages", response_model=MessagePage, responses=_errors(400, 404)
    )
    async def list_messages(
        user: User,
        conversation_id: ConversationId,
        limit: Limit = DEFAULT_MESSAGES_PAGE,
        after: After = None,
    ) -> MessagePage:
        """A page of the conversation's messages in creation order."""
        return await service.messages(user, conversation_id, limit=limit, after=after)

    @router.patch("/{conversation_id}", response_model=Conversation, responses=_errors(404))
    async def rename_conversation(
        user: User, conversation_id: ConversationId, body: RenameConversation
    ) -> Conversation:
        """Rename (title trimmed, 1 to 200 characters); the conversation moves to the top."""
        renamed = await service.rename(user, conversation_id, body.title)
        _count("ConversationRenamed")
        return renamed

    @router.delete("/{conversation_id}", response_model=DeletedConversation, responses=_errors(404))
    async def delete_conversation(
        user: User, conversation_id: ConversationId
    ) -> DeletedConversation:
        """Delete the conversation, all its messages and their attachments' bytes."""
        deleted = await service.delete(user, conversation_id)
        _count("ConversationDeleted")
        return deleted

    return router


def account_router(service: AccountService, authenticator: Authenticator) -> APIRouter:
    """The ``/api/me`` routes: the caller's whole account (the dev server mounts them too)."""
    router = APIRouter(prefix="/api/me", tags=["account"])
    User = Annotated[Caller, Depends(current_user(authenticator))]

    @router.delete("", response_model=ErasedAccount, responses=_errors())
    async def erase_account(user: User) -> ErasedAccount:
        """Erase everything stored for the caller: conversations, their items, attachments
        and their bytes, tasks, limit counters. Repeating it is harmless."""
        erased = await service.erase(user)
        _count("AccountErased")
        return erased

    @router.get(
        "/export",
        response_model=AccountExport,
        responses={
            **_errors(),
            413: {"model": ErrorBody, "description": "The export is too large for one response"},
        },
    )
    async def export_account(user: User) -> Response:
        """Everything stored for the caller, as one JSON document."""
        body = await service.export(user)
        _count("AccountExported")
        return Response(content=body, media_type="application/json")

    return router


def _count(name: str) -> None:
    """One CloudWatch (EMF) count; the request middleware flushes it when the request ends."""
    observability.metrics.add_metric(name=name, unit="Count", value=1)


def create_app(
    *,
    authenticator: Authenticator,
    database: Database | None = None,
    settings: Settings | None = None,
    erase_user_bytes: EraseUserBytes | None = None,
) -> FastAPI:
    """The conversations app; ``database`` and ``settings`` default to the process-wide ones.

    ``erase_user_bytes``: deletes a user's stored attachment bytes before ``DELETE /api/me``
    deletes the rows (default: :meth:`AttachmentFiles.delete_user` of the configured storage).
    """
    settings = settings or get_settings()
    database = database or get_database()
    files = AttachmentFiles.from_settings(settings)
    service = ConversationService(database, files)
    erase_user_bytes = erase_user_bytes or files.erase_user
    app = FastAPI(
        title="Conversations API",
        version="1.0.0",
        summary="Conversations (ChatKit threads) and their messages, as plain JSON.",
    )
    install_error_handlers(app)
    app.add_middleware(InputGuardMiddleware)

    @app.get("/health", response_model=Health, tags=["health"], responses=ALWAYS_POSSIBLE)
    async def health() -> Health:
        """Liveness: no auth, no database."""
        return Health()

    app.include_router(conversations_router(service, authenticator))
    app.include_router(account_router(AccountService(database, erase_user_bytes), authenticator))
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_request_bytes)
    app.add_middleware(AuthenticateFirstMiddleware, authenticator=authenticator)
    install_local_attachment_routes(app, files)
    app.add_middleware(observability.RequestLogMiddleware)
    return app
