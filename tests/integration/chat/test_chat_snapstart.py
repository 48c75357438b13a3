"""The chat function's SnapStart hooks on the real app and a real PostgreSQL database.

The hooks run in the order the Web Adapter runs them (lifespan startup, a request, before the
checkpoint, after the restore, the first request), called the way the adapter calls them: a POST
from loopback without invocation headers. What each step must leave behind is checked at the
source: the server's ``pg_stat_activity`` for the app's sessions, the pool's checked-in count,
the todo server's tool listing, the model client.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from chat_app import mcp_servers
from chat_app.agent import AgentFactory
from chat_app.app import create_app
from chat_app.snapstart import AFTER_RESTORE_ENV, BEFORE_CHECKPOINT_ENV
from chatkit_backend.db import Database
from chatkit_backend.settings import Settings
from fastapi import FastAPI

from tests.support.pg_activity import sessions_named, tagged_url
from tests.support.tokens import TEST_JWT_SECRET, auth_header

BEFORE = "/_lwa/before-checkpoint"
AFTER = "/_lwa/after-restore"
LIST_THREADS = {"type": "threads.list", "params": {"limit": 5}}


def settings_for(url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": url,
        "jwt_secret": TEST_JWT_SECRET,
        "openai_api_key": None,
        "openai_api_key_secret_arn": None,
        "openai_base_url": None,
        "mcp_servers": [],
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def hook_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BEFORE_CHECKPOINT_ENV, BEFORE)
    monkeypatch.setenv(AFTER_RESTORE_ENV, AFTER)


@asynccontextmanager
async def start(
    url: str, *, client_host: str = "127.0.0.1", **overrides: Any
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient, Database, AgentFactory]]:
    settings = settings_for(url, **overrides)
    database = Database.from_url(url, settings)
    agents = AgentFactory(settings, database)
    app = create_app(settings=settings, database=database, agent_factory=agents)
    transport = httpx.ASGITransport(app=app, client=(client_host, 50000))
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8080") as client,
        ):
            yield app, client, database, agents
    finally:
        await database.dispose()


async def test_hooks_close_connections_then_the_first_request_reconnects(
    pg_url: str, hook_paths: None
) -> None:
    url, name = tagged_url(pg_url)
    async with start(url) as (_app, client, database, _agents):
        first = await client.post("/chatkit", json=LIST_THREADS, headers=auth_header("snap-a"))
        assert first.status_code == 200
        assert sessions_named(pg_url, name) == 1
        assert database.engine.pool.checkedin() == 1  # type: ignore[attr-defined]
        mcp_servers._listed_tools.clear()

        before = await client.post(BEFORE)

        assert before.status_code == 200
        assert sessions_named(pg_url, name) == 0
        assert database.engine.pool.checkedin() == 0  # type: ignore[attr-defined]
        assert len(mcp_servers._listed_tools) == 1  # the todo tools were listed for the snapshot

        random.seed(7)
        frozen = random.getstate()
        after = await client.post(AFTER)
        assert after.status_code == 200
        assert random.getstate() != frozen

        again = await client.post("/chatkit", json=LIST_THREADS, headers=auth_header("snap-a"))
        assert again.status_code == 200
        assert again.json() == first.json()
        assert sessions_named(pg_url, name) == 1


async def test_a_streamed_turn_works_after_the_restore(pg_url: str, hook_paths: None) -> None:
    async with start(pg_url) as (_app, client, _database, _agents):
        assert (await client.post(BEFORE)).status_code == 200
        assert (await client.post(AFTER)).status_code == 200
        turn = await client.post(
            "/chatkit",
            json={"message": "add a task: water the plants"},
            headers=auth_header("snap-turn"),
        )
        assert turn.status_code == 200
        assert "tool_result" in turn.text
        assert turn.text.rstrip().endswith("data: [DONE]")


async def test_model_client_is_replaced_before_the_snapshot(pg_url: str, hook_paths: None) -> None:
    remote = {"openai_base_url": "http://127.0.0.1:9/v1"}  # never called: nothing listens there
    async with start(pg_url, **remote) as (_app, client, _database, agents):
        assert agents.provider is not None
        old_client = agents.provider.client
        old_model = agents.model

        assert (await client.post(BEFORE)).status_code == 200

        assert old_client.is_closed()
        assert agents.provider is not None
        assert not agents.provider.client.is_closed()
        assert agents.model is not old_model


@pytest.mark.parametrize(
    ("client_host", "headers"),
    [
        ("203.0.113.10", {}),  # not loopback
        ("127.0.0.1", {"x-amzn-request-context": '{"requestId": "r"}'}),  # a forwarded invocation
        ("127.0.0.1", {"x-amzn-lambda-context": "{}"}),
        ("127.0.0.1", {"x-forwarded-for": "127.0.0.1"}),  # a function URL request
    ],
)
async def test_calls_not_from_the_adapter_are_refused_and_change_nothing(
    pg_url: str, hook_paths: None, client_host: str, headers: dict[str, str]
) -> None:
    url, name = tagged_url(pg_url)
    async with start(url, client_host=client_host) as (_app, client, database, _agents):
        warm = await client.post("/chatkit", json=LIST_THREADS, headers=auth_header("snap-b"))
        assert warm.status_code == 200
        for path in (BEFORE, AFTER):
            refused = await client.post(path, headers=headers)
            assert refused.status_code == 403
        assert sessions_named(pg_url, name) == 1
        assert database.engine.pool.checkedin() == 1  # type: ignore[attr-defined]


async def test_without_the_adapter_variables_the_routes_do_not_exist(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(BEFORE_CHECKPOINT_ENV, raising=False)
    monkeypatch.delenv(AFTER_RESTORE_ENV, raising=False)
    async with start(pg_url) as (_app, client, _database, _agents):
        for path in (BEFORE, AFTER):
            # Unauthenticated, a body-carrying request is refused before routing; a user's is not
            # routed to a hook either.
            assert (await client.post(path)).status_code == 401
            assert (await client.post(path, headers=auth_header("snap-c"))).status_code == 404
