"""NUL characters, which PostgreSQL cannot store, get a 400 at every entry point (never a 500).

Both function apps run in-process (httpx ASGITransport) over this run's PostgreSQL database, so a
regression shows as the 500 / dead stream it would be in production.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from chat_app.app import create_app as create_chat_app
from chatkit_backend.auth import build_authenticator
from chatkit_backend.db import Database
from chatkit_backend.input_checks import NUL_MESSAGE, contains_nul, reject_nul
from chatkit_backend.settings import Settings
from conversations_app.api import create_app as create_conversations_app

from tests.support.tokens import TEST_JWT_SECRET, auth_header


def test_contains_nul_looks_everywhere() -> None:
    assert contains_nul({"a": [1, {"b": "x\x00"}]})
    assert contains_nul({"k\x00": 1})
    assert not contains_nul({"a": [1, {"b": "x"}], "n": None})
    with pytest.raises(ValueError, match="NUL"):
        reject_nul("a\x00b")


@pytest.fixture
async def client(pg_database: Database) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(jwt_secret=TEST_JWT_SECRET)
    authenticator = build_authenticator(settings)
    chat = create_chat_app(settings=settings, database=pg_database, authenticator=authenticator)
    crud = create_conversations_app(
        settings=settings, database=pg_database, authenticator=authenticator
    )

    async def router(scope: Any, receive: Any, send: Any) -> None:
        target = crud if scope.get("path", "").startswith("/api/conversations") else chat
        await target(scope, receive, send)

    transport = httpx.ASGITransport(app=router)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        http.headers.update(auth_header("nul-user"))
        yield http


def _text_input(text: str) -> dict[str, Any]:
    return {"content": [{"type": "input_text", "text": text}], "attachments": []}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/chatkit", {"message": "hi\x00there"}),
        ("POST", "/chatkit", {"type": "threads.create", "params": {"input": _text_input("a\x00")}}),
        (
            "POST",
            "/chatkit",
            {"type": "threads.update", "params": {"thread_id": "t", "title": "\x00"}},
        ),
        ("POST", "/api/chat/stream?message=a%00b", None),
        ("POST", "/api/conversations", {"title": "a\x00b"}),
        ("GET", "/api/conversations/thr_%00", None),
        ("GET", "/api/conversations?after=%00", None),
    ],
)
async def test_nul_is_a_400_with_a_json_reason(
    client: httpx.AsyncClient, method: str, path: str, body: dict[str, Any] | None
) -> None:
    response = await client.request(method, path, json=body)
    assert response.status_code in (400, 422)
    detail = response.json()["detail"]
    assert "NUL" in str(detail) or "NUL" in str(response.json())


async def test_renaming_to_nul_is_refused_and_the_title_kept(client: httpx.AsyncClient) -> None:
    created = (await client.post("/api/conversations", json={"title": "Kept"})).json()
    response = await client.patch(f"/api/conversations/{created['id']}", json={"title": "x\x00"})
    assert response.status_code == 422
    assert NUL_MESSAGE in response.json()["detail"]
    kept = (await client.get(f"/api/conversations/{created['id']}")).json()
    assert kept["title"] == "Kept"
