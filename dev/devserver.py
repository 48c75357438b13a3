"""The local dev server: the chat and conversations functions' ASGI apps on one port.

Deployed, each function has its own URL; locally one process serves both, routed by path, so a
front end can point at ``http://127.0.0.1:$PORT`` for everything. On start it brings the database
to the latest migration (deployed functions never migrate; the migration job does). Without
``DATABASE_URL`` it uses an embedded SQLite file under ``data/``; without JWT settings every
request is the development user (and it says so loudly).

Run it with ``make dev`` (or ``python dev/devserver.py``).
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
for function_dir in ("functions/chat", "functions/conversations", "functions/migrate"):
    path = str(REPO_ROOT / function_dir)
    if path not in sys.path:
        sys.path.insert(0, path)

import migration_runner  # noqa: E402
from chatkit_backend.attachments import AttachmentFiles  # noqa: E402
from chatkit_backend.auth import build_authenticator  # noqa: E402
from chatkit_backend.db import Database, resolve_database_url, set_database  # noqa: E402
from chatkit_backend.observability import logger  # noqa: E402
from chatkit_backend.settings import Settings, get_settings  # noqa: E402
from cors import cors  # noqa: E402
from playground_site import PlaygroundSite  # noqa: E402
from starlette.types import ASGIApp, Receive, Scope, Send  # noqa: E402

CONVERSATIONS_PATHS = ("/api/conversations", "/api/me", "/openapi.json", "/docs")
"""Served by the CRUD app; the rest by the chat app. The OpenAPI document and its docs page are
the CRUD function's (the chat function's ChatKit body is one JSON union, documented by the SDK)."""


class PathRouter:
    """Send ``/api/conversations...`` and the API docs to the CRUD app, the rest to the chat app.

    Both are complete FastAPI apps (as deployed); a path prefix router keeps their routes,
    error handlers and OpenAPI documents exactly as they are in Lambda.
    """

    def __init__(self, chat: ASGIApp, conversations: ASGIApp) -> None:
        self.chat = chat
        self.conversations = conversations

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(CONVERSATIONS_PATHS):
            await self.conversations(scope, receive, send)
        else:
            await self.chat(scope, receive, send)


def expire_unsent_attachments(settings: Settings, url: Any) -> None:
    """At start, the local counterpart of the bucket's lifecycle rule: attachments created but
    never sent, older than ``UNSENT_DAYS``, go with their files."""

    async def sweep() -> int:
        database = Database.from_url(url, settings)
        try:
            return await AttachmentFiles.from_settings(settings).expire_unsent(database)
        finally:
            await database.dispose()

    removed = asyncio.run(sweep())
    if removed:
        logger.info("expired unsent attachments", extra={"count": removed})


def build_app(settings: Settings) -> ASGIApp:
    """Migrate the configured database, then compose both function apps over it."""
    from chat_app.app import create_app as create_chat_app
    from conversations_app.api import create_app as create_conversations_app

    url = resolve_database_url(settings)
    migration_runner.upgrade(url)
    expire_unsent_attachments(settings, url)
    database = Database.from_url(url, settings)
    set_database(database)
    authenticator = build_authenticator(settings, allow_dev_user=True)
    chat = create_chat_app(settings=settings, database=database, authenticator=authenticator)
    conversations = create_conversations_app(
        settings=settings, database=database, authenticator=authenticator
    )
    app: ASGIApp = PlaygroundSite(PathRouter(chat, conversations))  # the page at /
    if settings.cors_allow_origins:
        app = cors(app, settings.cors_allow_origins)
    logger.info(
        "dev server ready",
        extra={"database": url.render_as_string(hide_password=True), "stage": settings.stage},
    )
    return app


def main() -> None:
    import uvicorn

    settings = get_settings()
    port = int(os.environ.get("PORT", "8000"))
    host = os.environ.get("HOST", "127.0.0.1")
    uvicorn.run(build_app(settings), host=host, port=port, log_level="info")


if __name__ == "__main__":
    main()
