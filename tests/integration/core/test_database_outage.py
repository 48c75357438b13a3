"""With the database gone, both functions answer 503 JSON with ``Retry-After``, log one line per
failure, and serve again once it is back, without a restart.

The database sits behind a TCP proxy the test cuts and restores (the real driver sees refused
and dropped connections, as in a failover); both apps run in-process over it.
"""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from chatkit_backend.db import Database
from chatkit_backend.errors import DatabaseUnavailable
from chatkit_backend.settings import Settings
from sqlalchemy.engine import make_url

from tests.support.function_apps import both_function_apps
from tests.support.log_capture import captured_log
from tests.support.tcp_proxy import TcpProxy
from tests.support.tokens import TEST_JWT_SECRET, auth_header

pytestmark = pytest.mark.postgres_only

FAILING_REQUESTS = [
    ("GET", "/api/conversations", None),
    ("POST", "/api/conversations", {"title": "during the outage"}),
    ("GET", "/api/conversations/recent/first", None),
    ("POST", "/chatkit", {"type": "threads.list", "params": {}}),
    ("POST", "/chatkit", {"message": "hello?"}),
    ("POST", "/api/chat/stream?message=hello", None),
]


@pytest.fixture
async def proxy(pg_url: str) -> AsyncIterator[TcpProxy]:
    target = make_url(pg_url)
    proxy = TcpProxy(target.host or "127.0.0.1", target.port or 5432)
    await proxy.start()
    yield proxy
    await proxy.cut()


@pytest.fixture
async def client(pg_url: str, proxy: TcpProxy) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(jwt_secret=TEST_JWT_SECRET, db_pool_size=2)
    database = Database.from_url(make_url(pg_url).set(port=proxy.port), settings)
    transport = httpx.ASGITransport(app=both_function_apps(settings, database))
    async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=30) as http:
        http.headers.update(auth_header("outage-user"))
        yield http
    await database.dispose()


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    with captured_log() as buffer:
        yield buffer


async def test_outage_is_503_then_service_resumes(
    client: httpx.AsyncClient, proxy: TcpProxy, log_lines: io.StringIO
) -> None:
    before = await client.post("/api/conversations", json={"title": "kept"})
    assert before.status_code == 201

    await proxy.cut()
    log_lines.seek(0)
    log_lines.truncate()
    for method, path, body in FAILING_REQUESTS:
        response = await client.request(method, path, json=body)
        assert response.status_code == 503, (path, response.text)
        assert response.headers["retry-after"] == DatabaseUnavailable.headers["Retry-After"]
        assert response.json() == {"detail": DatabaseUnavailable.default_message}

    lines = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    assert "Traceback" not in log_lines.getvalue()
    outages = [line for line in lines if line["message"].startswith("database unavailable")]
    assert len(outages) == len(FAILING_REQUESTS)
    requests = [line for line in lines if line["message"] == "request"]
    assert [line["status"] for line in requests] == [503] * len(FAILING_REQUESTS)
    assert {line["correlation_id"] for line in outages} == {
        line["correlation_id"] for line in requests
    }

    await proxy.restore()
    listed = await client.get("/api/conversations")
    assert listed.status_code == 200
    assert [c["title"] for c in listed.json()["conversations"]] == ["kept"]
    answer = await client.post("/chatkit", json={"message": "back again?"})
    assert answer.status_code == 200
    assert "data: [DONE]" in answer.text
