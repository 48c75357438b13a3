"""A real uvicorn on 127.0.0.1 serving an ASGI app from a background thread, for end-to-end tests.

Usage::

    database = Database.from_url(url)
    app = app_over(database, lambda db: create_app(database=db, ...))
    with UvicornThread(app, lifespan="off") as server:
        httpx.get(f"{server.url}/health")

:func:`conversations_server` is the conversations function's app served that way.

The app is built, served and cleaned up inside the server thread's event loop, because async
database connections belong to the loop that opened them: an engine shared with the test's loop
would hand one loop's connection to the other. The port is bound before the thread starts, so
:attr:`url` is known at once and no other process can take the port in between; :meth:`start`
returns once uvicorn listens (an event, not a poll), and raises at once if the server failed to
start (an app that cannot be built, a lifespan startup that fails).
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Literal, Self

import httpx
import uvicorn
from chatkit_backend.auth import build_authenticator
from chatkit_backend.db import Database
from chatkit_backend.settings import Settings
from conversations_app.api import create_app as create_conversations_app
from starlette.types import ASGIApp

AppFactory = Callable[[], AbstractAsyncContextManager[ASGIApp]]
"""Builds the app in the server's event loop; its exit releases what the app used, there too."""

START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 30.0


class _Server(uvicorn.Server):
    """uvicorn that tells the waiting thread once it listens."""

    def __init__(self, config: uvicorn.Config, listening: threading.Event) -> None:
        super().__init__(config)
        self._listening = listening

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self._listening.set()


class UvicornThread:
    """One ASGI app under uvicorn on a free loopback port, served from its own thread and loop."""

    def __init__(
        self,
        app: AppFactory,
        *,
        lifespan: Literal["on", "off", "auto"] = "on",
        name: str = "uvicorn",
    ) -> None:
        self._app = app
        self._lifespan = lifespan
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self.port: int = self._socket.getsockname()[1]
        self._settled = threading.Event()
        """Set when uvicorn listens, or when the thread ends without getting there."""
        self._server: _Server | None = None
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"{name}-{self.port}", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        """Start serving; returns once the server accepts connections."""
        self._thread.start()
        if not self._settled.wait(timeout=START_TIMEOUT_SECONDS):
            self.stop()
            raise RuntimeError(f"the server on {self.url} did not start")
        if self._server is None or not self._server.started:
            self._thread.join(timeout=STOP_TIMEOUT_SECONDS)
            raise RuntimeError(f"the server on {self.url} failed to start") from self._failure
        return self

    def stop(self) -> None:
        """Ask uvicorn to shut down (open connections are finished) and wait for the thread."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=STOP_TIMEOUT_SECONDS)
        self._socket.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # uvicorn exits with SystemExit when startup fails
            self._failure = exc
        finally:
            self._settled.set()

    async def _serve(self) -> None:
        async with self._app() as app:
            config = uvicorn.Config(
                app, log_level="warning", lifespan=self._lifespan, access_log=False
            )
            self._server = _Server(config, self._settled)
            await self._server.serve(sockets=[self._socket])


@asynccontextmanager
async def client_of(server: UvicornThread) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of ``server`` (its URL as the base)."""
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        yield client


def app_over(database: Database, build: Callable[[Database], ASGIApp]) -> AppFactory:
    """An app over ``database``, built in the server's loop; the database is disposed there when
    the server stops (its engine may be made anywhere: connections are opened on first use)."""

    @asynccontextmanager
    async def app() -> AsyncIterator[ASGIApp]:
        try:
            yield build(database)
        finally:
            await database.dispose()

    return app


def conversations_server(settings: Settings) -> UvicornThread:
    """The conversations function's app (not started) over ``settings``' database and auth."""
    database = Database.from_url(settings.database_url or "", settings)
    app = app_over(
        database,
        lambda db: create_conversations_app(
            authenticator=build_authenticator(settings), database=db, settings=settings
        ),
    )
    return UvicornThread(app, lifespan="off", name="conversations-server")
