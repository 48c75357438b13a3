"""The dev server's CORS wrapper: what a page on another origin may do."""

from collections.abc import AsyncIterator

import httpx
import pytest
from cors import cors
from fastapi import FastAPI

ORIGIN = "https://app.example"


def build_app() -> FastAPI:
    app = FastAPI()

    @app.get("/me")
    async def me() -> dict[str, str]:
        return {"user_id": "alice"}

    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=cors(build_app(), [ORIGIN]))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


async def test_cors_preflight_allows_configured_origin(client: httpx.AsyncClient) -> None:
    response = await client.options(
        "/me",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ORIGIN
    allowed = response.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed
    assert "content-type" in allowed


async def test_cors_refuses_other_origins(client: httpx.AsyncClient) -> None:
    response = await client.options(
        "/me",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers


async def test_cors_exposes_thread_and_request_ids(client: httpx.AsyncClient) -> None:
    response = await client.get("/me", headers={"Origin": ORIGIN})
    exposed = response.headers["access-control-expose-headers"].lower()
    assert "x-thread-id" in exposed
    assert "x-request-id" in exposed


def test_cors_without_origins_returns_the_app_unchanged() -> None:
    app = build_app()
    assert cors(app, []) is app
