"""The chat function's ASGI app: wiring only (the service, routes, middleware, SnapStart hooks).

:func:`create_app` is the one way the app is built: ``run.sh`` runs it as uvicorn's factory
(``--factory chat_app.app:create_app``), and the tests and the dev server call it. It builds the
:class:`~chat_app.service.ChatService`, and with it the agent stack, at once: uvicorn calls the
factory in the Lambda init phase, before the readiness check (``GET /health``) answers, so the
first request does not pay for it. FastMCP (the todo server and its in-process client) loads on
the first turn, or in the SnapStart warm-up: requests without a turn never need it. ``/health``
touches neither the database nor the agent.

The end of the lifespan startup is the end of the init phase: a garbage collector that the
entry point paused (``python -m chat_app``, :mod:`chatkit_backend.init_phase`) resumes there.

SnapStart: when the Web Adapter's ``AWS_LWA_SNAPSTART_*`` variables are set, the app also serves
the two hook routes of :mod:`chat_app.snapstart` (refused unless the adapter itself calls them).

No ``from __future__ import annotations`` here: FastAPI resolves the routes' annotations at
definition time, and ``User`` is local to :func:`create_app`.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from chatkit_backend.attachments import AttachmentFiles, install_local_attachment_routes
from chatkit_backend.auth import Authenticator, build_authenticator
from chatkit_backend.caller import Caller
from chatkit_backend.db import Database, get_database
from chatkit_backend.init_phase import end_init_phase
from chatkit_backend.observability import RequestLogMiddleware
from chatkit_backend.settings import Settings, get_settings
from chatkit_backend.web import (
    AuthenticateFirstMiddleware,
    BodySizeLimitMiddleware,
    InputGuardMiddleware,
    current_user,
    install_error_handlers,
)
from fastapi import Depends, FastAPI, Request
from starlette.responses import Response

from .agent import AgentFactory
from .service import ChatService
from .snapstart import SnapStartHooks, install_snapstart_routes
from .streaming import AgentSource
from .turn_limits import Clock


def create_app(
    *,
    settings: Settings | None = None,
    database: Database | None = None,
    authenticator: Authenticator | None = None,
    agent_factory: AgentSource | None = None,
    limits_clock: Clock | None = None,
) -> FastAPI:
    """The chat app. Defaults: process settings, process database, JWT auth, the real agent,
    the wall clock for the per-user limits (tests move ``limits_clock`` across minutes and days).
    """
    settings = settings or get_settings()
    authenticator = authenticator or build_authenticator(settings)
    database = database or get_database()
    agents = agent_factory or AgentFactory(settings, database)
    files = AttachmentFiles.from_settings(settings)
    service = ChatService.build(settings, database, agents, files, limits_clock)
    User = Annotated[Caller, Depends(current_user(authenticator))]

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        end_init_phase()
        yield

    app = FastAPI(title="Chat", lifespan=lifespan, docs_url=None, redoc_url=None)
    hooks = install_snapstart_routes(app, SnapStartHooks(settings, authenticator, database, agents))
    install_error_handlers(app)
    app.add_middleware(InputGuardMiddleware)
    # Dictation's audio needs more than MAX_REQUEST_BYTES: the service holds every other
    # request type to that limit (ChatService.chatkit).
    body_limit = max(settings.max_request_bytes, settings.transcribe_request_bytes)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=body_limit)
    app.add_middleware(AuthenticateFirstMiddleware, authenticator=authenticator, open_paths=hooks)
    install_local_attachment_routes(app, files)  # outside the guards: binary uploads
    app.add_middleware(RequestLogMiddleware)

    @app.get("/health")
    async def health() -> dict[str, str]:
        """Readiness check of the Lambda Web Adapter: answers once the app has started."""
        return {"status": "ok"}

    @app.post("/chatkit")
    async def chatkit(request: Request, caller: User) -> Response:
        """The ChatKit protocol (body with ``type``) or the simple one (body with ``message``)."""
        return await service.chatkit(await request.body(), caller)

    @app.get("/api/composer")
    async def composer(caller: User) -> dict[str, Any]:
        """What the composer may offer: ``models`` (``MODEL_CHOICES``) and ``tools`` (ids)."""
        return service.composer()

    @app.post("/api/chat/stream")
    async def chat_stream(
        caller: User, message: str | None = None, conversation_id: str | None = None
    ) -> Response:
        """The answer to ``message`` as plain text chunks over SSE."""
        return await service.text_stream(message, conversation_id, caller)

    return app
