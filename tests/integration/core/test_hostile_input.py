"""Input no route may accept gets a 400 JSON answer at every entry point, and nothing is stored.

NUL (PostgreSQL cannot store it), unpaired surrogates (no UTF-8 codec can encode them), deep
nesting (recursive walks raise ``RecursionError``) and bytes that are not UTF-8. Both function
apps run in-process over this run's PostgreSQL database, so a regression shows as the 500 or
dead stream it would be in production.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from chatkit_backend.db import Database
from chatkit_backend.input_checks import (
    ENCODING_MESSAGE,
    NESTING_MESSAGE,
    NUL_MESSAGE,
    SURROGATE_MESSAGE,
    reject_nul,
)
from chatkit_backend.settings import Settings

from tests.support.function_apps import both_function_apps
from tests.support.tokens import TEST_JWT_SECRET, auth_header


def test_reject_nul_names_the_problem() -> None:
    with pytest.raises(ValueError, match="NUL"):
        reject_nul("a\x00b")


@pytest.fixture
async def client(pg_database: Database) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(jwt_secret=TEST_JWT_SECRET)
    transport = httpx.ASGITransport(app=both_function_apps(settings, pg_database))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        http.headers.update(auth_header(f"hostile-{secrets.token_hex(6)}"))
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
    assert response.status_code == 400
    assert NUL_MESSAGE in response.json()["detail"]
    kept = (await client.get(f"/api/conversations/{created['id']}")).json()
    assert kept["title"] == "Kept"


JSON_CONTENT = {"Content-Type": "application/json"}


def _nested(depth: int) -> str:
    return '{"message": "hi", "x": ' + "[" * depth + "]" * depth + "}"


ROUTES_WITH_BODIES = [
    ("POST", "/chatkit"),
    ("POST", "/api/conversations"),
    ("PATCH", "/api/conversations/thr_x"),
]
"""Every route that reads a body (the chat function's ``/api/chat/stream`` reads the query)."""

SURROGATE_BODIES = [
    '{"message": "\\ud800"}',
    '{"message": "ok \\udfff"}',
    '{"type": "threads.create", "params": {"input": {"content": [{"type": "input_text", '
    '"text": "\\ud83d"}], "attachments": []}}}',
    '{"title": "\\ud800x"}',
]


@pytest.mark.parametrize(("method", "path"), ROUTES_WITH_BODIES)
@pytest.mark.parametrize("body", SURROGATE_BODIES)
async def test_unpaired_surrogates_are_a_400_before_anything_is_stored(
    client: httpx.AsyncClient, method: str, path: str, body: str
) -> None:
    response = await client.request(method, path, content=body, headers=JSON_CONTENT)
    assert response.status_code == 400
    assert response.json() == {"detail": SURROGATE_MESSAGE}
    listed = (await client.get("/api/conversations")).json()
    assert listed["conversations"] == []


async def test_a_paired_surrogate_is_an_ordinary_character(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/conversations",
        content='{"title": "smile \\ud83d\\ude00"}',
        headers=JSON_CONTENT,
    )
    assert response.status_code == 201
    assert response.json()["title"] == "smile \U0001f600"


@pytest.mark.parametrize(("method", "path"), ROUTES_WITH_BODIES)
@pytest.mark.parametrize("depth", [65, 480, 5_000, 100_000])
async def test_deep_nesting_is_a_400_not_a_recursion_error(
    client: httpx.AsyncClient, method: str, path: str, depth: int
) -> None:
    response = await client.request(method, path, content=_nested(depth), headers=JSON_CONTENT)
    assert response.status_code == 400
    assert response.json() == {"detail": NESTING_MESSAGE}


async def test_nesting_within_the_limit_reaches_the_route(client: httpx.AsyncClient) -> None:
    body = json.loads(_nested(60))
    response = await client.post("/api/conversations", json={**body, "title": "deep"})
    assert response.status_code == 422  # the route's own validation: unknown fields
    assert "extra" in response.text.lower() or "forbidden" in response.text.lower()


@pytest.mark.parametrize(("method", "path"), ROUTES_WITH_BODIES)
async def test_a_body_that_is_not_utf8_is_a_400(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    response = await client.request(
        method,
        path,
        content=b'{"message": "\xff\xfe"}',
        headers=JSON_CONTENT,
    )
    assert response.status_code == 400
    assert response.json() == {"detail": ENCODING_MESSAGE}


@pytest.mark.parametrize(
    "query", ["message=%ED%A0%80", "message=%FF", "message=ok&conversation_id=%C3"]
)
async def test_a_query_that_is_not_utf8_is_a_400(client: httpx.AsyncClient, query: str) -> None:
    response = await client.post(f"/api/chat/stream?{query}")
    assert response.status_code == 400
    assert response.json() == {"detail": ENCODING_MESSAGE}
    assert (await client.get("/api/conversations")).json()["conversations"] == []
