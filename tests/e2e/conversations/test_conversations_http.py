"""The route contract over real HTTP: the conversations app under uvicorn on 127.0.0.1.

The server runs in a background thread with its own event loop and its own engine (async
connections belong to the loop that opened them; see :mod:`tests.support.servers`); the tests talk
to it with an httpx client, the requests built from the same sample events as the Lambda handler
suite.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from chatkit_backend.settings import Settings
from pydantic import SecretStr

from tests.integration.conversations.routes_contract import Api, Reply, RouteContract
from tests.support.servers import UvicornThread, conversations_server
from tests.support.tokens import TEST_JWT_SECRET, auth_header

FORWARDED_HEADERS = ("authorization", "content-type", "accept")


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
def server(pg_url: str) -> Iterator[UvicornThread]:
    settings = Settings(database_url=pg_url, jwt_secret=SecretStr(TEST_JWT_SECRET))
    with conversations_server(settings) as running:
        yield running


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
