"""The local dev server as a user runs it: a real process, real HTTP, both apps on one port.

Covers the README's first command path: with no ``DATABASE_URL`` the server creates and migrates an
embedded SQLite database under ``DATA_DIR``; with one it migrates that database on start. Without
JWT settings it serves the development user; with ``JWT_SECRET`` it requires tokens.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.support.databases import create_scratch_database, drop_scratch_database
from tests.support.paths import REPO_ROOT
from tests.support.tokens import TEST_JWT_SECRET, auth_header

REPO_ROOT = REPO_ROOT


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class DevServer:
    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        clean_env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("JWT_", "DATABASE_", "OPENAI_", "MCP_"))
        }
        self.log_path = log_path
        self._log = log_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, str(REPO_ROOT / "dev" / "devserver.py")],
            env={**clean_env, **env, "PORT": str(self.port)},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
        )

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"dev server exited: {self.log_path.read_text()}")
            try:
                if httpx.get(f"{self.base_url}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"dev server not ready: {self.log_path.read_text()}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self._log.close()


def _sse_events(response: httpx.Response) -> list[str]:
    return [line[len("data: ") :] for line in response.iter_lines() if line.startswith("data: ")]


@pytest.fixture
def embedded_server(tmp_path: Path) -> Iterator[DevServer]:
    server = DevServer({"DATA_DIR": str(tmp_path / "data")}, tmp_path / "server.log")
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def test_embedded_database_chat_turn_then_listed(
    embedded_server: DevServer, tmp_path: Path
) -> None:
    """Fresh machine path: SQLite created and migrated, offline model, dev user, both apps."""
    base = embedded_server.base_url
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
    server = DevServer(
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

        no_token = httpx.get(f"{server.base_url}/api/conversations", timeout=10)
        assert no_token.status_code == 401
        assert "detail" in no_token.json()
        created = httpx.post(
            f"{server.base_url}/api/conversations",
            json={"title": "From the dev server"},
            headers=auth_header("dev-e2e-user"),
            timeout=10,
        )
        assert created.status_code in (200, 201)
        other = httpx.get(
            f"{server.base_url}/api/conversations/{created.json()['id']}",
            headers=auth_header("someone-else"),
            timeout=10,
        )
        assert other.status_code == 404

        conversation = f"{server.base_url}/api/conversations/{created.json()['id']}"
        headers = auth_header("dev-e2e-user")
        renamed = httpx.patch(conversation, json={"title": " New "}, headers=headers, timeout=10)
        assert renamed.json()["title"] == "New"
        assert httpx.delete(conversation, headers=headers, timeout=10).status_code == 200
        assert httpx.delete(conversation, headers=headers, timeout=10).status_code == 404

        _assert_cors(server.base_url)
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
