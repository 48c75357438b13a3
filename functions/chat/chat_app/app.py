"""The chat function's ASGI app: wiring only (routes, middleware, and when the heavy parts load).

Runs under uvicorn locally and in Lambda behind the AWS Lambda Web Adapter (``run.sh``).

Import cost: importing this module loads FastAPI and the layer's light modules only; the agent
stack (``chatkit.server`` imports ``agents``, which imports ``openai`` and ``mcp``: well over a
second) loads when the :class:`~chat_app.service.ChatService` is built. The app builds it in its
lifespan startup, i.e. during the Lambda init phase, before the readiness check (``GET /health``)
answers, so the first request does not pay for it; an ASGI server that skips the lifespan builds
it on first use. FastMCP (the todo server and its in-process client, about 0.3 s) loads on the
first turn, or in the SnapStart warm-up: requests without a turn never need it. ``/health``
touches neither the database nor the agent.

The end of the lifespan startup is the end of the init phase: a garbage collector that the
entry point paused (``python -m chat_app``, :mod:`chatkit_backend.init_phase`) resumes there.

SnapStart: when the Web Adapter's ``AWS_LWA_SNAPSTART_*`` variables are set, the app also serves
the two hook routes of :mod:`chat_app.snapstart` (refused unless the adapter itself calls them).

The module-level ``app`` (for ``uvicorn chat_app.app:app``) is created on first access: it reads
the deployment's settings and refuses to start without JWT configuration, which tests and tools
that merely import this module must not trip over.

No ``from __future__ import annotations`` here: FastAPI resolves the routes' annotations at
definition time, and ``User`` is local to :func:`create_app`.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Annotated, Any

from chatkit_backend.attachments import AttachmentFiles, install_local_attachment_routes
from chatkit_backend.auth import Authenticator, build_authenticator
from chatkit_backend.caller import Caller
from chatkit_backend.db import Database, get_database
from chatkit_backend.init_phase import end_init_phase
from chatkit_backend.observability import RequestLogMiddleware
from chatkit_backend.settings import Settings, get_settings
from chatkit_backend.web import (
    BodySizeLimitMiddleware,
    InputGuardMiddleware,
    current_user,
    install_error_handlers,
)
from fastapi import Depends, FastAPI, Request
from starlette.responses import Response

from .snapstart import SnapStartHooks, install_snapstart_routes

if TYPE_CHECKING:
    from .service import ChatService
    from .streaming import AgentSource


class LazyChatService:
    """Builds the :class:`ChatService` once, on the first :meth:`get` (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        database: Database | None,
        agents: "AgentSource | None",
        files: AttachmentFiles,
    ) -> None:
        self._settings = settings
        self._files = files
        self._database = database
        self._agents = agents
        self._service: ChatService | None = None

    def get(self) -> "ChatService":
        if self._service is None:
            from .agent import AgentFactory
            from .service import ChatService

            self._database = database = self._database or get_database()
            self._agents = agents = self._agents or AgentFactory(self._settings, database)
            self._service = ChatService.build(self._settings, database, agents, self._files)
        return self._service

    @property
    def database(self) -> Database:
        """The service's database (builds the service first)."""
        self.get()
        assert self._database is not None
        return self._database

    @property
    def agents(self) -> "AgentSource":
        """The service's agent source (builds the service first)."""
        self.get()
        assert self._agents is not None
        return self._agents


def create_app(
    *,
    settings: Settings | None = None,
    database: Database | None = None,
    authenticator: Authenticator | None = None,
    agent_factory: "AgentSource | None" = None,
) -> FastAPI:
    """The chat app. Defaults: process settings, process database, JWT auth, the real agent."""
    settings = settings or get_settings()
    authenticator = authenticator or build_authenticator(settings)
    files = AttachmentFiles.from_settings(settings)
    chat_service = LazyChatService(settings, database, agent_factory, files)
    User = Annotated[Caller, Depends(current_user(authenticator))]

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        chat_service.get()
        end_init_phase()
        yield

    app = FastAPI(title="Chat", lifespan=lifespan, docs_url=None, redoc_url=None)
    install_error_handlers(app)
    app.add_middleware(InputGuardMiddleware)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_request_bytes)
    install_local_attachment_routes(app, files)
    app.add_middleware(RequestLogMiddleware)

    install_snapstart_routes(app, SnapStartHooks(settings, authenticator, chat_service))

    @app.get("/health")
    async def health() -> dict[str, str]:
        """Readiness check of the Lambda Web Adapter: answers once the app has started."""
        return {"status": "ok"}

    @app.post("/chatkit")
    async def chatkit(request: Request, caller: User) -> Response:
        """The ChatKit protocol (body with ``type``) or the simple one (body with ``message``)."""
        return await chat_service.get().chatkit(await request.body(), caller)

    @app.post("/api/chat/stream")
    async def chat_stream(
        caller: User, message: str | None = None, conversation_id: str | None = None
    ) -> Response:
        """The answer to ``message`` as plain text chunks over SSE."""
        return await chat_service.get().text_stream(message, conversation_id, caller)

    return app


def __getattr__(name: str) -> Any:
    """``app``: the deployed app, created on first access (see the module docstring)."""
    if name == "app":
        created = create_app()
        globals()["app"] = created
        return created
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
