"""The route contract over real HTTP: the conversations app under uvicorn on 127.0.0.1.

The server runs in a background thread with its own event loop and its own engine (async
connections belong to the loop that opened them); the tests talk to it with an httpx client, the
requests built from the same sample events as the Lambda handler suite.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from chatkit_backend.auth import build_authenticator
from chatkit_backend.db import Database
from chatkit_backend.settings import Settings
from conversations_app.api import create_app
from pydantic import SecretStr

from tests.integration.conversations.routes_contract import Api, Reply, RouteContract
from tests.support.tokens import TEST_JWT_SECRET, auth_header

FORWARDED_HEADERS = ("authorization", "content-type", "accept")


class _Server(uvicorn.Server):
    """uvicorn that tells the test thread once it listens."""

    def __init__(self, config: uvicorn.Config, ready: threading.Event) -> None:
        super().__init__(config)
        self._ready = ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self._ready.set()


class ServerThread:
    """The conversations app on a free loopback port, served from a background thread."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        self._ready = threading.Event()
        self._server: _Server | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()))

    def __enter__(self) -> ServerThread:
        self._thread.start()
        if not self._ready.wait(timeout=60):
            raise RuntimeError("the conversations server did not start")
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._server is not None:
            self._server.should_exit = True
        self._thread.join(timeout=30)

    async def _serve(self) -> None:
        database = Database.from_url(self.settings.database_url or "", self.settings)
        app = create_app(
            authenticator=build_authenticator(self.settings),
            database=database,
            settings=self.settings,
        )
        config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
        self._server = _Server(config, self._ready)
        try:
            await self._server.serve(sockets=[self._socket])
        finally:
            await database.dispose()


class HttpTransport:
    """Turns a function URL event into the HTTP request it stands for."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def send(self, event: dict[str, Any]) -> Reply:
        query = event["rawQueryString"]
        response = await self.client.request(
            event["requestContext"]["http"]["method"],
            event["rawPath"] + (f"?{query}" if query else ""),
            headers={k: v for k, v in event["headers"].items() if k in FORWARDED_HEADERS},
            content=event.get("body"),
        )
        is_json = response.headers.get("content-type", "").startswith("application/json")
        return Reply(
            response.status_code,
            response.json() if is_json else response.text,
            dict(response.headers),
        )


@pytest.fixture(scope="module")
def server(pg_url: str) -> Iterator[ServerThread]:
    settings = Settings(database_url=pg_url, jwt_secret=SecretStr(TEST_JWT_SECRET))
    with ServerThread(settings) as running:
        yield running


@pytest.fixture
async def client(server: ServerThread) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        yield client


class TestOverHttp(RouteContract):
    @pytest.fixture
    def api(self, client: httpx.AsyncClient) -> Api:
        return Api(HttpTransport(client))

    async def test_every_reply_carries_a_request_id(self, api: Api, alice: str) -> None:
        reply = await api.call("list", alice, query="")
        assert reply.headers["x-request-id"]

    async def test_oversized_body_is_413(self, client: httpx.AsyncClient, alice: str) -> None:
        body = b'{"title": "' + b"x" * 1_100_000 + b'"}'
        response = await client.post("/api/conversations", content=body, headers=auth_header(alice))
        assert response.status_code == 413
        assert response.json() == {"detail": "Request body too large"}
