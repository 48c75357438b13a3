"""Both function apps over one database, routed by path as the dev server does, in-process."""

from __future__ import annotations

from chat_app.app import create_app as create_chat_app
from chatkit_backend.auth import build_authenticator
from chatkit_backend.db import Database
from chatkit_backend.settings import Settings
from conversations_app.api import create_app as create_conversations_app
from starlette.types import ASGIApp, Receive, Scope, Send


def both_function_apps(settings: Settings, database: Database) -> ASGIApp:
    """``/api/conversations...`` and ``/api/me...`` to the CRUD app, the rest to the chat app."""
    authenticator = build_authenticator(settings)
    chat = create_chat_app(settings=settings, database=database, authenticator=authenticator)
    crud = create_conversations_app(
        settings=settings, database=database, authenticator=authenticator
    )

    async def router(scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        target = crud if path.startswith(("/api/conversations", "/api/me")) else chat
        await target(scope, receive, send)

    return router
