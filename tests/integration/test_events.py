"""The sample events of the chat and migration functions (``events/chat``, ``events/migration``).

Every file is loaded and checked for what it is meant to be: the chat events are function URL
events (payload 2.0) whose bodies are requests of the protocol they name, and, with the token and
thread id filled in, each one sent to the chat app as the Lambda Web Adapter would send it (an
HTTP request made from the event) gets the status and content type the README documents. The
migration events drive the migration function's entry point against a scratch database. So the
files cannot drift from the code, and the README cannot drift from the files.

The conversations function's events are exercised by ``tests/integration/conversations``.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import parse_qsl

import custom_resource
import httpx
import migration_handler
import pytest
from chat_app.agent import AgentFactory
from chat_app.app import create_app
from chat_app.simple_protocol import SimpleChatRequest, SimpleEvent
from chatkit.types import ChatKitReq, Page, ThreadItem, ThreadMetadata, ThreadStreamEvent
from chatkit_backend.auth import build_authenticator
from chatkit_backend.caller import Caller
from chatkit_backend.db import Database
from chatkit_backend.settings import Settings, get_settings
from pydantic import BaseModel, TypeAdapter

from tests.support.cloudformation import response_server
from tests.support.databases import schema_revision, scratch_database, table_names
from tests.support.migration_scripts import PROJECT_HEAD
from tests.support.paths import REPO_ROOT
from tests.support.tokens import TEST_JWT_SECRET, mint_hs256

EVENTS_DIR = REPO_ROOT / "events"
README = EVENTS_DIR / "README.md"
TOKEN_PLACEHOLDER = "REPLACE_WITH_JWT"
THREAD_PLACEHOLDER = "REPLACE_WITH_THREAD_ID"
RESPONSE_URL_PLACEHOLDER = "REPLACE_WITH_RESPONSE_URL"

CHATKIT_REQUEST: TypeAdapter[ChatKitReq] = TypeAdapter(ChatKitReq)
STREAM_EVENT: TypeAdapter[ThreadStreamEvent] = TypeAdapter(ThreadStreamEvent)
SIMPLE_EVENT: TypeAdapter[SimpleEvent] = TypeAdapter(SimpleEvent)
THREAD_PAGE: TypeAdapter[Page[ThreadMetadata]] = TypeAdapter(Page[ThreadMetadata])
ITEM_PAGE: TypeAdapter[Page[ThreadItem]] = TypeAdapter(Page[ThreadItem])

SSE = "text/event-stream"
JSON = "application/json"
CHAT_EVENTS: dict[str, tuple[int, str]] = {
    "health": (200, JSON),
    "threads-create": (200, SSE),
    "threads-add-user-message": (200, SSE),
    "threads-list": (200, JSON),
    "items-list": (200, JSON),
    "simple-message": (200, SSE),
    "chat-stream": (200, SSE),
}
"""Each chat event file and the (status, content type) the README documents for it."""
MIGRATION_EVENTS: dict[str, type[BaseModel]] = {
    "upgrade": custom_resource.PlainInvocation,
    "create": custom_resource.CustomResourceRequest,
}
"""Each migration event file and the model the migration function reads it as."""


def load(kind: str, name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EVENTS_DIR / kind / f"{name}.json").read_text())
    return loaded


def filled(event: dict[str, Any], *, token: str, thread_id: str) -> dict[str, Any]:
    """The event with its placeholders replaced, as a user does before ``sam local invoke``."""
    raw = json.dumps(event).replace(TOKEN_PLACEHOLDER, token)
    return dict(json.loads(raw.replace(THREAD_PLACEHOLDER, thread_id)))


def http_request(client: httpx.AsyncClient, event: dict[str, Any]) -> httpx.Request:
    """The HTTP request the Lambda Web Adapter makes of a function URL event."""
    query = event["rawQueryString"]
    body = event.get("body")
    content = base64.b64decode(body) if body and event["isBase64Encoded"] else (body or "").encode()
    return client.build_request(
        event["requestContext"]["http"]["method"],
        event["rawPath"] + (f"?{query}" if query else ""),
        headers=event["headers"],
        content=content,
    )


def sse_datas(body: str) -> list[str]:
    """The ``data`` of every SSE message in a (buffered) response body; comments skipped."""
    datas = []
    for message in body.split("\n\n"):
        lines = message.splitlines()
        data = [line[5:].removeprefix(" ") for line in lines if line.startswith("data:")]
        if data:
            datas.append("\n".join(data))
    return datas


def test_every_event_file_is_known_and_listed_in_the_readme() -> None:
    readme = README.read_text()
    for kind, names in (("chat", set(CHAT_EVENTS)), ("migration", set(MIGRATION_EVENTS))):
        files = {path.stem for path in (EVENTS_DIR / kind).glob("*.json")}
        assert files == names, kind
        for name in names:
            assert f"`{kind}/{name}.json`" in readme, name


# --- chat ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CHAT_EVENTS))
def test_chat_event_is_a_function_url_request_of_its_protocol(name: str) -> None:
    event = load("chat", name)
    http = event["requestContext"]["http"]
    assert (event["version"], event["routeKey"], event["isBase64Encoded"]) == (
        "2.0",
        "$default",
        False,
    )
    assert http["path"] == event["rawPath"]
    assert event.get("queryStringParameters", {}) == dict(parse_qsl(event["rawQueryString"]))
    if name == "health":
        assert http["method"] == "GET"
        assert "authorization" not in event["headers"]
        return
    assert event["headers"]["authorization"] == f"Bearer {TOKEN_PLACEHOLDER}"
    assert http["method"] == "POST"
    if event["rawPath"] == "/api/chat/stream":
        query = event["queryStringParameters"]
        request = SimpleChatRequest(message=query["message"], thread_id=query["conversation_id"])
        assert request.thread_id == THREAD_PLACEHOLDER
        return
    assert event["rawPath"] == "/chatkit"
    body = json.loads(event["body"])
    if "type" in body:
        parsed = CHATKIT_REQUEST.validate_python(body)
        assert parsed.type == name.replace("-", ".", 1).replace("-", "_")
    else:
        SimpleChatRequest.model_validate(body)


@pytest.fixture(scope="module")
async def chat_client(pg_url: str, pg_database: Database) -> AsyncIterator[httpx.AsyncClient]:
    """The chat app in-process (no model key: the offline model), over this run's database."""
    settings = Settings(
        database_url=pg_url,
        jwt_secret=TEST_JWT_SECRET,
        openai_api_key=None,
        openai_api_key_secret_arn=None,
        openai_base_url=None,
        mcp_servers=[],
    )
    app = create_app(
        settings=settings,
        database=pg_database,
        authenticator=build_authenticator(settings),
        agent_factory=AgentFactory(settings, pg_database),
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://chat.test") as client:
        yield client


@pytest.fixture(scope="module")
def user() -> Caller:
    return Caller(user_id=f"user_{secrets.token_hex(8)}")


@pytest.fixture(scope="module")
async def thread_id(chat_client: httpx.AsyncClient, user: Caller) -> str:
    """A thread of ``user``'s, made by sending ``threads-create.json``."""
    event = filled(load("chat", "threads-create"), token=mint_hs256(user.user_id), thread_id="")
    response = await chat_client.send(http_request(chat_client, event))
    assert response.status_code == 200, response.text
    created = STREAM_EVENT.validate_json(sse_datas(response.text)[0])
    assert created.type == "thread.created"
    return created.thread.id


@pytest.mark.parametrize("name", sorted(CHAT_EVENTS))
async def test_chat_event_gets_its_documented_answer(
    name: str, chat_client: httpx.AsyncClient, user: Caller, thread_id: str
) -> None:
    event = filled(load("chat", name), token=mint_hs256(user.user_id), thread_id=thread_id)

    response = await chat_client.send(http_request(chat_client, event))

    status, media_type = CHAT_EVENTS[name]
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(media_type)
    if name == "threads-list":
        assert thread_id in [entry.id for entry in THREAD_PAGE.validate_json(response.text).data]
    elif name == "items-list":
        items = ITEM_PAGE.validate_json(response.text).data
        assert items
        assert {item.thread_id for item in items} == {thread_id}
    elif media_type == SSE:
        datas = sse_datas(response.text)
        if event["rawPath"] == "/api/chat/stream":
            assert response.headers["x-thread-id"] == thread_id
            assert datas[-1] == "[DONE]"
            assert "buy milk" in "".join(datas)  # the task threads-create.json added
        elif "type" in json.loads(event["body"]):
            events = [STREAM_EVENT.validate_json(data) for data in datas]
            assert "error" not in [item.type for item in events]
        else:
            assert datas[-1] == "[DONE]"
            simple = [SIMPLE_EVENT.validate_json(data) for data in datas[:-1]]
            assert "error" not in [item.type for item in simple]


async def test_chat_events_without_a_token_get_401(chat_client: httpx.AsyncClient) -> None:
    for name in sorted(set(CHAT_EVENTS) - {"health"}):
        event = load("chat", name)
        del event["headers"]["authorization"]
        response = await chat_client.send(http_request(chat_client, event))
        assert response.status_code == 401, name


# --- migration ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(MIGRATION_EVENTS))
def test_migration_event_is_what_the_function_reads(name: str) -> None:
    event = load("migration", name)
    MIGRATION_EVENTS[name].model_validate(event)
    assert custom_resource.is_custom_resource_request(event) == (name == "create")


@pytest.fixture
def scratch_deployment(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An empty scratch database configured as the migration function's ``DATABASE_URL``."""
    with scratch_database("ckb_events") as url:
        monkeypatch.setenv("DATABASE_URL", url)
        for name in ("DATABASE_SECRET_ARN", "MIGRATIONS_DIR"):
            monkeypatch.delenv(name, raising=False)
        get_settings.cache_clear()
        try:
            yield url
        finally:
            get_settings.cache_clear()


def revision_and_tables(url: str) -> tuple[str | None, set[str]]:
    return schema_revision(url), table_names(url)


def test_upgrade_event_migrates_the_database(scratch_deployment: str) -> None:
    assert revision_and_tables(scratch_deployment)[0] is None

    result = migration_handler.handler(load("migration", "upgrade"), None)

    assert result == {"action": "upgrade", "revision": PROJECT_HEAD}
    revision, tables = revision_and_tables(scratch_deployment)
    assert revision == PROJECT_HEAD
    assert {"threads", "thread_items", "tasks"} <= tables


def test_create_event_migrates_and_answers_cloudformation(scratch_deployment: str) -> None:
    event = load("migration", "create")
    assert event["ResponseURL"] == RESPONSE_URL_PLACEHOLDER
    with response_server() as cloudformation:
        event["ResponseURL"] = cloudformation.url()

        assert migration_handler.handler(event, None) is None

        answer = cloudformation.next_response(timeout=30)
        assert cloudformation.pending() == []
    assert answer.body["Status"] == "SUCCESS", answer.body["Reason"]
    assert answer.body["Data"] == {"Revision": PROJECT_HEAD}
    assert answer.body["PhysicalResourceId"] == custom_resource.PHYSICAL_RESOURCE_ID
    for echoed in ("StackId", "RequestId", "LogicalResourceId"):
        assert answer.body[echoed] == event[echoed]
    assert revision_and_tables(scratch_deployment)[0] == PROJECT_HEAD


def test_create_event_with_its_placeholder_runs_nothing(scratch_deployment: str) -> None:
    """As events/README.md says: a URL that is no pre-signed S3 URL is refused before anything
    runs (a forged request cannot trigger the migrations)."""
    assert migration_handler.handler(load("migration", "create"), None) is None
    assert revision_and_tables(scratch_deployment)[0] is None
