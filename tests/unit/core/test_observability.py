"""Observability: correlation and user ids on every log line, one line per request, no secrets.

No ``from __future__ import annotations``: FastAPI must resolve the routes' dependencies.
"""

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Annotated, Any

import httpx
import pytest
from chatkit_backend import observability
from chatkit_backend.auth import JwtAuthenticator
from chatkit_backend.caller import Caller
from chatkit_backend.observability import (
    RequestLogMiddleware,
    bind_user,
    get_logger,
    get_metrics,
    request_id_from_scope,
)
from chatkit_backend.settings import Settings
from chatkit_backend.web import current_user, install_error_handlers
from fastapi import Depends, FastAPI, Request

from tests.support.log_capture import captured_log
from tests.support.paths import REPO_ROOT
from tests.support.tokens import TEST_JWT_SECRET, auth_header

SECRET_TEXT = "the user's very private message"


LogReader = Callable[[], list[dict[str, Any]]]


@pytest.fixture
def log_lines() -> Iterator[LogReader]:
    """Reads the Powertools logger's JSON lines written so far in the test (its handler holds the
    stdout of the moment it was created, so the stream is swapped rather than captured)."""
    with captured_log() as buffer:
        yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines()]


def build_app(gate: dict[str, asyncio.Event] | None = None) -> FastAPI:
    settings = Settings(jwt_secret=TEST_JWT_SECRET, jwt_jwks_url=None, jwt_issuer=None)
    user = current_user(JwtAuthenticator(settings))
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(RequestLogMiddleware)

    @app.post("/chat")
    async def chat(request: Request, context: Annotated[Caller, Depends(user)]) -> dict[str, str]:
        await request.body()
        get_logger().info("inside the handler")
        get_metrics().add_metric(name="TurnCount", unit="Count", value=1)
        return {"ok": context.user_id}

    @app.get("/sync")
    def sync_route() -> dict[str, str]:  # runs in a worker thread
        bind_user("thread-user")
        return {}

    @app.get("/wait/{name}")
    async def wait(name: str, context: Annotated[Caller, Depends(user)]) -> dict[str, str]:
        assert gate is not None
        gate[f"entered-{name}"].set()
        await gate[name].wait()
        get_logger().info("after wait")
        return {}

    @app.get("/boom")
    async def boom() -> None:
        raise ValueError(SECRET_TEXT)

    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


async def test_every_line_carries_request_and_user_id(
    client: httpx.AsyncClient, log_lines: LogReader
) -> None:
    headers = auth_header("alice")
    response = await client.post(
        "/chat?message=secret-query", content=SECRET_TEXT.encode(), headers=headers
    )
    assert response.status_code == 200
    request_id = response.headers["x-request-id"]
    handler_line, request_line = log_lines()
    assert handler_line["message"] == "inside the handler"
    for line in (handler_line, request_line):
        assert line["correlation_id"] == request_id
        assert line["user_id"] == "alice"
        assert line["service"] == "chatkit-backend"
    assert request_line["message"] == "request"
    assert request_line["method"] == "POST"
    assert request_line["path"] == "/chat"
    assert request_line["status"] == 200
    assert isinstance(request_line["duration_ms"], float)
    raw = json.dumps([handler_line, request_line])
    token = headers["Authorization"].removeprefix("Bearer ")
    for forbidden in (token, SECRET_TEXT, "secret-query", "authorization", "Bearer"):
        assert forbidden not in raw


async def test_failed_auth_and_unhandled_errors_are_logged_without_details(
    client: httpx.AsyncClient, log_lines: LogReader
) -> None:
    assert (await client.post("/chat", headers={"Authorization": "Bearer x"})).status_code == 401
    assert (await client.get("/boom")).status_code == 500
    lines = log_lines()
    requests = [line for line in lines if line["message"] == "request"]
    assert [(r["path"], r["status"]) for r in requests] == [("/chat", 401), ("/boom", 500)]
    assert all("user_id" not in r for r in requests)
    (error,) = [line for line in lines if line["level"] == "ERROR"]
    assert error["message"] == "unhandled ValueError"
    assert "Traceback" in json.dumps(error)  # the stack is kept for the operator
    assert error["correlation_id"] == requests[1]["correlation_id"]


async def test_bind_user_from_a_worker_thread_reaches_the_request_line(
    client: httpx.AsyncClient, log_lines: LogReader
) -> None:
    await client.get("/sync")
    (line,) = log_lines()
    assert line["user_id"] == "thread-user"


async def test_concurrent_requests_keep_their_own_ids(log_lines: LogReader) -> None:
    gate = {name: asyncio.Event() for name in ("a", "b", "entered-a", "entered-b")}
    transport = httpx.ASGITransport(app=build_app(gate))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        first = asyncio.create_task(http.get("/wait/a", headers=auth_header("user-a")))
        second = asyncio.create_task(http.get("/wait/b", headers=auth_header("user-b")))
        await gate["entered-a"].wait()
        await gate["entered-b"].wait()  # both requests are now in flight at once
        gate["b"].set()
        response_b = await second
        gate["a"].set()
        response_a = await first
    lines = log_lines()
    by_request = {
        (line["correlation_id"], line["user_id"]) for line in lines if line["message"] != "request"
    }
    assert by_request == {
        (response_a.headers["x-request-id"], "user-a"),
        (response_b.headers["x-request-id"], "user-b"),
    }


async def test_metrics_are_flushed_after_each_request(
    client: httpx.AsyncClient, log_lines: LogReader, capsys: pytest.CaptureFixture[str]
) -> None:
    await client.post("/chat", headers=auth_header("alice"))
    (emf,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    directive = emf["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "ChatKitBackend"
    assert emf["TurnCount"] == [1.0]
    assert emf["service"] == "chatkit-backend"
    await client.get("/sync")  # no metric recorded: nothing printed
    assert capsys.readouterr().out == ""


def test_bind_user_outside_a_request_is_a_no_op(log_lines: LogReader) -> None:
    bind_user("nobody")
    get_logger().info("outside any request")
    (line,) = log_lines()
    assert "user_id" not in line
    assert "correlation_id" not in line


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        ({"aws.event": {"requestContext": {"requestId": "lambda-req-1"}}, "headers": []}, None),
        (
            {
                "headers": [
                    (b"x-amzn-request-context", b'{"requestId": "lwa-req-2"}'),
                    (b"x-request-id", b"client-3"),
                ]
            },
            "lwa-req-2",
        ),
        ({"headers": [(b"x-amzn-requestid", b"amzn-4"), (b"x-request-id", b"c-5")]}, "amzn-4"),
        ({"headers": [(b"x-amzn-request-context", b"not json")]}, "req_"),
        ({"headers": [(b"x-request-id", "é".encode())]}, "req_"),
    ],
)
def test_request_id_sources(scope: dict[str, Any], expected: str | None) -> None:
    found = request_id_from_scope(scope)
    if expected is None:
        assert found == "lambda-req-1"
    elif expected == "req_":
        assert found.startswith("req_")
    else:
        assert found == expected


def test_importing_observability_and_web_does_not_load_powertools() -> None:
    """The Powertools logger (~0.1 s) and tracer (~0.5 s) load on first use, not on import."""
    code = (
        "import sys; import chatkit_backend.observability, chatkit_backend.web; "
        "print(sorted(m for m in sys.modules if m.startswith(('aws_lambda_powertools', "
        "'aws_xray_sdk', 'agents', 'openai', 'fastmcp'))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(REPO_ROOT / "layers" / "shared")},
    )
    assert result.stdout.strip() == "[]"


def test_lazy_attributes_are_singletons() -> None:
    assert observability.logger is observability.logger is get_logger()
    assert observability.metrics is get_metrics()
    assert observability.tracer is observability.get_tracer()
    with pytest.raises(AttributeError):
        _ = observability.nothing_here
