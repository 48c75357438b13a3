"""The shared HTTP glue: JSON errors, the auth dependency and the body limit.

No ``from __future__ import annotations`` here: FastAPI must see the routes' ``Annotated``
dependencies, which refer to variables local to :func:`build_app`.
"""

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

import httpx
import pytest
from chatkit_backend.auth import JwtAuthenticator
from chatkit_backend.caller import Caller
from chatkit_backend.errors import NotFound
from chatkit_backend.observability import RequestLogMiddleware
from chatkit_backend.settings import Settings
from chatkit_backend.web import BodySizeLimitMiddleware, current_user, install_error_handlers
from fastapi import Depends, FastAPI, Request
from pydantic import BaseModel, Field

from tests.support.tokens import TEST_JWT_SECRET, auth_header, mint_hs256

MAX_BYTES = 2048


class Item(BaseModel):
    title: str = Field(min_length=1, max_length=5)
    count: int


def build_app() -> FastAPI:
    settings = Settings(jwt_secret=TEST_JWT_SECRET, jwt_jwks_url=None, jwt_issuer=None)
    user = current_user(JwtAuthenticator(settings))
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=MAX_BYTES)
    app.add_middleware(RequestLogMiddleware)

    @app.get("/me")
    async def me(context: Annotated[Caller, Depends(user)]) -> dict[str, Any]:
        return {"user_id": context.user_id, "request_id": context.request_id}

    @app.get("/missing")
    async def missing() -> None:
        raise NotFound("Conversation not found")

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("password=hunter2 leaked in an exception")

    @app.post("/items")
    async def create(item: Item) -> Item:
        return item

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, int]:
        return {"received": len(await request.body())}

    return app


@pytest.fixture(scope="module")
def app() -> FastAPI:
    return build_app()


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


# --- auth dependency ----------------------------------------------------------------------------


async def test_authenticated_request_gets_user_and_request_id(client: httpx.AsyncClient) -> None:
    response = await client.get("/me", headers=auth_header("alice"))
    assert response.status_code == 200
    body = response.json()
    assert body["user_id"] == "alice"
    assert body["request_id"] == response.headers["x-request-id"]


async def test_request_id_comes_from_the_platform_or_caller(client: httpx.AsyncClient) -> None:
    headers = {**auth_header("alice"), "x-amzn-requestid": "c0ffee-01"}
    assert (await client.get("/me", headers=headers)).json()["request_id"] == "c0ffee-01"
    headers = {**auth_header("alice"), "x-request-id": "client-42"}
    assert (await client.get("/me", headers=headers)).json()["request_id"] == "client-42"
    headers = {**auth_header("alice"), "x-request-id": "not an id; DROP TABLE"}
    generated = (await client.get("/me", headers=headers)).json()["request_id"]
    assert generated.startswith("req_")


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        ({}, "Missing Authorization header"),
        ({"Authorization": "Basic abc"}, "Authorization header is not a Bearer token"),
        ({"Authorization": "Bearer nope"}, "Malformed token"),
        ({"Authorization": f"Bearer {mint_hs256('a', exp=1)}"}, "Token has expired"),
    ],
)
async def test_unauthenticated_is_401_json(
    client: httpx.AsyncClient, headers: dict[str, str], detail: str
) -> None:
    response = await client.get("/me", headers=headers)
    assert response.status_code == 401
    assert response.json() == {"detail": detail}
    assert response.headers["www-authenticate"] == "Bearer"


async def test_openapi_declares_bearer_security(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert document["paths"]["/me"]["get"]["security"] == [{"HTTPBearer": []}]
    assert "security" not in document["paths"]["/missing"]["get"]


# --- error shapes -------------------------------------------------------------------------------


async def test_app_error_is_its_status_and_detail(client: httpx.AsyncClient) -> None:
    response = await client.get("/missing")
    assert response.status_code == 404
    assert response.json() == {"detail": "Conversation not found"}


async def test_unhandled_exception_is_500_json_without_its_text(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/boom")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"detail": "Internal error"}
    assert "hunter2" not in response.text


async def test_validation_error_is_422_with_summary_and_json_safe_errors(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/items", json={"title": "far too long", "count": "many"})
    assert response.status_code == 422
    body = response.json()
    assert body["detail"] == (
        "body.title: String should have at most 5 characters; "
        "body.count: Input should be a valid integer, unable to parse string as an integer"
    )
    assert body["errors"] == [
        {
            "loc": ["body", "title"],
            "msg": "String should have at most 5 characters",
            "type": "string_too_long",
        },
        {
            "loc": ["body", "count"],
            "msg": "Input should be a valid integer, unable to parse string as an integer",
            "type": "int_parsing",
        },
    ]
    assert "far too long" not in response.text  # inputs are not echoed


async def test_invalid_json_body_is_422_json(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/items", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["detail"].startswith("body")


@pytest.mark.parametrize(
    ("method", "path", "status", "detail"),
    [("GET", "/nowhere", 404, "Not Found"), ("DELETE", "/me", 405, "Method Not Allowed")],
)
async def test_http_exceptions_are_json(
    client: httpx.AsyncClient, method: str, path: str, status: int, detail: str
) -> None:
    response = await client.request(method, path)
    assert response.status_code == status
    assert response.json() == {"detail": detail}


# --- body limit ---------------------------------------------------------------------------------


async def test_body_within_limit_is_served(client: httpx.AsyncClient) -> None:
    response = await client.post("/echo", content=b"x" * MAX_BYTES)
    assert response.json() == {"received": MAX_BYTES}


async def test_declared_oversized_body_is_413_json(client: httpx.AsyncClient) -> None:
    response = await client.post("/echo", content=b"x" * (MAX_BYTES + 1))
    assert response.status_code == 413
    assert response.json() == {"detail": "Request body too large"}


async def test_streamed_oversized_body_is_413_json(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(5):
            yield b"y" * 1000

    for path in ("/echo", "/items"):  # raw body read, and FastAPI's own body parsing
        response = await client.post(path, content=chunks())
        assert "content-length" not in response.request.headers
        assert response.status_code == 413
        assert response.json() == {"detail": "Request body too large"}


async def call_asgi(app: Any, headers: list[tuple[bytes, bytes]], body: bytes) -> list[Any]:
    """Drive an ASGI app by hand (for headers an HTTP client would not send)."""
    sent: list[Any] = []
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/echo",
        "query_string": b"",
        "headers": headers,
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


async def test_body_limit_checks_content_length_before_the_app_runs() -> None:
    calls: list[str] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        calls.append("called")

    limited = BodySizeLimitMiddleware(inner, max_bytes=10)
    sent = await call_asgi(limited, [(b"content-length", b"11")], b"")
    assert sent[0]["status"] == 413
    assert json.loads(sent[1]["body"]) == {"detail": "Request body too large"}
    sent = await call_asgi(limited, [(b"content-length", b"ten")], b"")
    assert sent[0]["status"] == 400
    assert json.loads(sent[1]["body"]) == {"detail": "Invalid Content-Length"}
    assert calls == []


async def test_body_limit_counts_bytes_that_exceed_a_lying_content_length() -> None:
    limited = BodySizeLimitMiddleware(build_app(), max_bytes=10)
    sent = await call_asgi(limited, [(b"content-length", b"5")], b"z" * 50)
    assert sent[0]["status"] == 413


async def read_body(receive: Any) -> None:
    while (await receive()).get("more_body"):
        pass


async def plain_reader(scope: Any, receive: Any, send: Any) -> None:
    """An app with no exception handling of its own: the middleware itself must answer."""
    await read_body(receive)
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


async def grouped_reader(scope: Any, receive: Any, send: Any) -> None:
    """Reads the body in a task group, so the error arrives wrapped in an ExceptionGroup."""
    import anyio

    async with anyio.create_task_group() as group:
        group.start_soon(read_body, receive)


@pytest.mark.parametrize("inner", [plain_reader, grouped_reader])
async def test_body_limit_answers_for_apps_without_handlers(inner: Any) -> None:
    chunks = iter([b"a" * 6, b"b" * 6])
    sent: list[Any] = []
    scope = {"type": "http", "method": "POST", "path": "/", "query_string": b"", "headers": []}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": next(chunks), "more_body": True}

    async def send(message: Any) -> None:
        sent.append(message)

    await BodySizeLimitMiddleware(inner, max_bytes=10)(scope, receive, send)
    assert sent[0]["status"] == 413
    assert json.loads(sent[1]["body"]) == {"detail": "Request body too large"}


# --- CORS ---------------------------------------------------------------------------------------
