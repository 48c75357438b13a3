"""Fixtures of the chat end-to-end tests: one real server for the session, a model per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from agents import set_tracing_disabled
from agents.testing import ScriptedModel
from chatkit_backend.db import Database
from chatkit_backend.store import PostgresStore

from tests.e2e.chat.chat_support import (
    AgentsBuilder,
    ChatServerThread,
    Gate,
    SwitchModel,
    client_of,
    factory_with,
    server_settings,
    servers_per_api,
)
from tests.support.fake_openai import APIS, Api, FakeOpenAI


@pytest.fixture(scope="session")
def switch_model() -> SwitchModel:
    set_tracing_disabled(True)  # scripted models have no trace backend to export to
    return SwitchModel()


@pytest.fixture(scope="session")
def chat_server(pg_url: str, switch_model: SwitchModel) -> Iterator[ChatServerThread]:
    server = ChatServerThread(
        server_settings(pg_url, max_message_chars=2_000), factory_with(switch_model)
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture
def start_server(pg_url: str) -> Iterator[Callable[..., ChatServerThread]]:
    """Start another server with its own settings and model (stopped after the test)."""
    started: list[ChatServerThread] = []

    def start(agents: AgentsBuilder, **overrides: Any) -> ChatServerThread:
        server = ChatServerThread(server_settings(pg_url, **overrides), agents).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def model(switch_model: SwitchModel) -> Iterator[ScriptedModel]:
    """This test's scripted model, plugged into the session server."""
    scripted = ScriptedModel()
    switch_model.current = scripted
    yield scripted
    switch_model.current = ScriptedModel()


@pytest.fixture
def gate() -> Iterator[Gate]:
    """A gate for this test's model, always opened at the end (its waiter is a worker thread)."""
    opened = Gate()
    yield opened
    opened.open()


@pytest.fixture
async def client(chat_server: ChatServerThread) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=chat_server.url, timeout=30) as http:
        yield http


@pytest.fixture
def store(pg_database: Database) -> PostgresStore:
    """The store seen from the test's side (same database, the test's own engine)."""
    return PostgresStore(pg_database)


# --- the real model path against the fake OpenAI server ---------------------------------------


@pytest.fixture(scope="session")
def fake_openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture(scope="session")
def api_servers(
    pg_url: str, fake_openai: FakeOpenAI, switch_model: SwitchModel
) -> Iterator[dict[Api, ChatServerThread]]:
    """One chat server per model API (see :func:`servers_per_api`)."""
    with servers_per_api(pg_url, fake_openai, agent_turn_timeout_seconds=3.0) as servers:
        yield servers


@pytest.fixture(scope="module")
def module_servers(
    request: pytest.FixtureRequest, pg_url: str, fake_openai: FakeOpenAI
) -> Iterator[dict[Api, ChatServerThread]]:
    """One chat server per model API with the test module's ``SERVER_SETTINGS`` (overrides)."""
    overrides: dict[str, Any] = request.module.SERVER_SETTINGS
    with servers_per_api(pg_url, fake_openai, **overrides) as servers:
        yield servers


@pytest.fixture
async def module_http(
    module_servers: dict[Api, ChatServerThread], api: Api
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the module's server (:func:`module_servers`) whose model speaks ``api``."""
    async with client_of(module_servers[api]) as http:
        yield http


@pytest.fixture(params=APIS)
def api(request: pytest.FixtureRequest) -> Api:
    return request.param


@pytest.fixture
def fake(fake_openai: FakeOpenAI) -> Iterator[FakeOpenAI]:
    """The fake, with an empty script and no recorded requests (echo answers when idle)."""
    fake_openai.reset()
    yield fake_openai
    fake_openai.reset()


@pytest.fixture
async def api_client(
    api_servers: dict[Api, ChatServerThread], api: Api
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the chat server whose model speaks ``api`` to the fake."""
    async with httpx.AsyncClient(base_url=api_servers[api].url, timeout=30) as http:
        yield http
