"""The local dev server as a user runs it: a real process, real HTTP, both apps on one port.

Covers the README's first command path: with no ``DATABASE_URL`` the server creates and migrates an
embedded SQLite database under ``DATA_DIR``; with one it migrates that database on start. Without
JWT settings it serves the development user; with ``JWT_SECRET`` it requires tokens.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.support.databases import create_scratch_database, drop_scratch_database
from tests.support.server_process import DevServerProcess
from tests.support.tokens import TEST_JWT_SECRET, auth_header


def _sse_events(response: httpx.Response) -> list[str]:
    return [line[len("data: ") :] for line in response.iter_lines() if line.startswith("data: ")]


@pytest.fixture
def embedded_server(tmp_path: Path) -> Iterator[DevServerProcess]:
    server = DevServerProcess({"DATA_DIR": str(tmp_path / "data")}, tmp_path / "server.log")
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def test_embedded_database_chat_turn_then_listed(
    embedded_server: DevServerProcess, tmp_path: Path
) -> None:
    """Fresh machine path: SQLite created and migrated, offline model, dev user, both apps."""
    base = embedded_server.url
    assert (tmp_path / "data" / "chat.db").exists()
    with httpx.stream(
        "POST", f"{base}/chatkit", json={"message": "add a task to buy milk"}, timeout=30
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        thread_id = response.headers["x-thread-id"]
        events = _sse_events(response)
    assert events[-1] == "[DONE]"
    decoded = [json.loads(event) for event in events[:-1]]
    kinds = [event["type"] for event in decoded]
    assert kinds[0] == "thinking"
    assert "tool_call" in kinds
    assert "tool_result" in kinds
    result = next(event for event in decoded if event["type"] == "tool_result")
    assert result["output"]["title"] == "buy milk"
    answer = "".join(json.loads(e).get("content", "") for e in events[:-1] if '"text"' in e)
    assert "Offline model" in answer
    assert "buy milk" in answer

    listed = httpx.get(f"{base}/api/conversations", timeout=10).json()["conversations"]
    assert [c["id"] for c in listed] == [thread_id]
    detail = httpx.get(f"{base}/api/conversations/{thread_id}", timeout=10).json()
    roles = [m["role"] for m in detail["messages"]]
    assert roles[0] == "user"
    assert roles[-1] == "assistant"
    assert "tool" in roles

    document = httpx.get(f"{base}/openapi.json", timeout=10).json()
    assert "/api/conversations/{conversation_id}" in document["paths"]
    assert httpx.get(f"{base}/docs", timeout=10).status_code == 200

    log = embedded_server.log_path.read_text()
    assert "development user" in log.lower() or "dev user" in log.lower()


def test_postgres_database_is_migrated_on_start_and_tokens_required(tmp_path: Path) -> None:
    url = create_scratch_database("ckb_dev")
    server = DevServerProcess(
        {
            "DATABASE_URL": url,
            "JWT_SECRET": TEST_JWT_SECRET,
            "CORS_ALLOW_ORIGINS": "http://localhost:5173",
        },
        tmp_path / "log",
    )
    try:
        server.wait_ready()
        engine = create_engine(url)
        with engine.connect() as conn:
            revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
        engine.dispose()
        assert revision

        no_token = httpx.get(f"{server.url}/api/conversations", timeout=10)
        assert no_token.status_code == 401
        assert "detail" in no_token.json()
        created = httpx.post(
            f"{server.url}/api/conversations",
            json={"title": "From the dev server"},
            headers=auth_header("dev-e2e-user"),
            timeout=10,
        )
        assert created.status_code in (200, 201)
        other = httpx.get(
            f"{server.url}/api/conversations/{created.json()['id']}",
            headers=auth_header("someone-else"),
            timeout=10,
        )
        assert other.status_code == 404

        conversation = f"{server.url}/api/conversations/{created.json()['id']}"
        headers = auth_header("dev-e2e-user")
        renamed = httpx.patch(conversation, json={"title": " New "}, headers=headers, timeout=10)
        assert renamed.json()["title"] == "New"
        assert httpx.delete(conversation, headers=headers, timeout=10).status_code == 200
        assert httpx.delete(conversation, headers=headers, timeout=10).status_code == 404

        _assert_cors(server.url)
    finally:
        server.stop()
        drop_scratch_database(url)


def _assert_cors(base: str) -> None:
    """Browsers on the configured origin may call both apps with a token; others may not."""
    for path in ("/api/conversations", "/chatkit"):
        preflight = httpx.options(
            f"{base}{path}",
            headers={
                "Origin": "http://localhost:5173",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type",
            },
            timeout=10,
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "http://localhost:5173"
        assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    listed = httpx.get(
        f"{base}/api/conversations",
        headers={"Origin": "http://localhost:5173", **auth_header("dev-e2e-user")},
        timeout=10,
    )
    assert listed.headers["access-control-allow-origin"] == "http://localhost:5173"
    stranger = httpx.get(
        f"{base}/api/conversations",
        headers={"Origin": "https://evil.example", **auth_header("dev-e2e-user")},
        timeout=10,
    )
    assert "access-control-allow-origin" not in stranger.headers
