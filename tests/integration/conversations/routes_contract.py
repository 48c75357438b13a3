"""The conversations routes' contract, run through every way the function is reached.

:class:`RouteContract` holds the tests; a subclass supplies the ``api`` fixture: the Lambda
handler invoked in-process with the ``events/conversations/*.json`` files
(``test_conversations_handler.py``), or a real HTTP server
(``tests/e2e/conversations/test_conversations_http.py``).
Both transports start from the same event files (token and ids substituted), so the sample events
are exercised by every run.

Every reply is also checked against the app's own OpenAPI document: its status must be one the
operation documents, and its JSON body must validate against the documented schema.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import parse_qsl

import jsonschema
import pytest
from chatkit.types import ThreadItem
from chatkit_backend.caller import Caller
from chatkit_backend.db import Database
from chatkit_backend.store import PostgresStore
from chatkit_backend.tool_calls import ToolCallRecord

from tests.integration.conversations.chat_items import (
    assistant_message,
    end_of_turn,
    tool_call,
    user_message,
)
from tests.support.paths import REPO_ROOT
from tests.support.tokens import mint_hs256

EVENTS_DIR = REPO_ROOT / "events" / "conversations"
TOKEN_PLACEHOLDER = "REPLACE_WITH_JWT"
ID_PLACEHOLDER = "REPLACE_WITH_CONVERSATION_ID"
ROUTES = (
    "health",
    "list",
    "create",
    "recent",
    "get",
    "messages",
    "rename",
    "delete",
    "erase-account",
    "export-account",
)
AUTHENTICATED_ROUTES = ROUTES[1:]
CONVERSATION_KEYS = {"id", "title", "created_at", "updated_at"}
NOT_FOUND = {"detail": "Conversation not found"}
KEEP: Any = object()
"""Default of :meth:`Api.call` arguments: keep what the event file has."""


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS_DIR / f"{name}.json").read_text())


def build_event(
    name: str,
    *,
    token: str | None,
    conversation_id: str | None = None,
    query: str | None = KEEP,
    body: Any = KEEP,
    raw_body: str | None = None,
    path: str | None = None,
) -> dict[str, Any]:
    """The sample event ``name`` made concrete: token, id, query and body filled in.

    ``token=None`` drops the Authorization header; ``path`` replaces the route (for documents
    such as ``/openapi.json`` that have no event file of their own).
    """
    event = load_event(name)
    headers = event["headers"]
    if token is None:
        headers.pop("authorization", None)
    elif "authorization" in headers:
        headers["authorization"] = headers["authorization"].replace(TOKEN_PLACEHOLDER, token)
    else:
        headers["authorization"] = f"Bearer {token}"
    route = path or event["rawPath"]
    if ID_PLACEHOLDER in route:
        assert conversation_id is not None, f"event {name} needs a conversation id"
        route = route.replace(ID_PLACEHOLDER, conversation_id)
    event["rawPath"] = event["requestContext"]["http"]["path"] = route
    if query is not KEEP:
        event["rawQueryString"] = query or ""
        event.pop("queryStringParameters", None)
        if query:
            event["queryStringParameters"] = dict(parse_qsl(query, keep_blank_values=True))
    if raw_body is not None or body is not KEEP:
        event.pop("body", None)
        text = raw_body if raw_body is not None else None if body is None else json.dumps(body)
        if text is not None:
            event["body"] = text
            headers["content-type"] = "application/json"
    return event


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


class Transport(Protocol):
    """Delivers a function URL event (to the handler, or over HTTP) and returns the reply."""

    async def send(self, event: dict[str, Any]) -> Reply: ...


class Api:
    """Calls routes by their event file's name and checks each reply against the OpenAPI doc."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self._openapi: dict[str, Any] | None = None

    async def call(
        self,
        route: str,
        user: str | None,
        *,
        conversation_id: str | None = None,
        query: str | None = KEEP,
        body: Any = KEEP,
        raw_body: str | None = None,
        token: str | None = None,
    ) -> Reply:
        """``user=None`` sends no token; ``token`` sends that exact (e.g. broken) token."""
        bearer = token if token is not None else mint_hs256(user) if user is not None else None
        event = build_event(
            route,
            token=bearer,
            conversation_id=conversation_id,
            query=query,
            body=body,
            raw_body=raw_body,
        )
        reply = await self.transport.send(event)
        await self._check_documented(event, reply)
        return reply

    async def document(self, path: str) -> Reply:
        return await self.transport.send(build_event("health", token=None, path=path))

    async def openapi(self) -> dict[str, Any]:
        if self._openapi is None:
            reply = await self.document("/openapi.json")
            assert reply.status == 200
            self._openapi = reply.body
        return self._openapi

    async def _check_documented(self, event: dict[str, Any], reply: Reply) -> None:
        document = await self.openapi()
        method = event["requestContext"]["http"]["method"].lower()
        operation = operation_for(document, method, event["rawPath"])
        responses = operation["responses"]
        assert str(reply.status) in responses, (
            f"{method.upper()} {event['rawPath']} answered {reply.status}, documented: "
            f"{sorted(responses)}"
        )
        content = responses[str(reply.status)].get("content", {}).get("application/json")
        if content is not None:
            schema = {**content["schema"], "components": document["components"]}
            jsonschema.Draft202012Validator(schema).validate(reply.body)


def operation_for(document: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    for template, operations in document["paths"].items():
        pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, path) and method in operations:
            return operations[method]
    raise AssertionError(f"{method.upper()} {path} is not in the OpenAPI document")


def new_user_id() -> str:
    return f"user_{secrets.token_hex(8)}"


T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


class RouteContract:
    """Every route's success and failure cases. Subclasses provide the ``api`` fixture."""

    @pytest.fixture
    def api(self) -> Api:
        raise NotImplementedError("a transport subclass provides the api fixture")

    @pytest.fixture
    def alice(self) -> str:
        return new_user_id()

    @pytest.fixture
    def bob(self) -> str:
        return new_user_id()

    @pytest.fixture
    def store(self, pg_database: Database) -> PostgresStore:
        """The ChatKit store on the same database: what the chat function writes with."""
        return PostgresStore(pg_database)

    @staticmethod
    async def create(api: Api, user: str, title: str | None = "A conversation") -> dict[str, Any]:
        reply = await api.call("create", user, body={"title": title} if title else None)
        assert reply.status == 201, reply.body
        return reply.body

    # --- health, auth, OpenAPI ---------------------------------------------------------------

    async def test_health_needs_no_token(self, api: Api) -> None:
        reply = await api.call("health", None)
        assert (reply.status, reply.body) == (200, {"status": "ok"})

    @pytest.mark.parametrize("route", AUTHENTICATED_ROUTES)
    async def test_no_token_or_bad_token_is_401(self, api: Api, route: str) -> None:
        for token in (None, "not-a-jwt", mint_hs256("mallory", secret="x" * 40)):
            reply = await api.call(route, None, token=token, conversation_id="thr_x")
            assert reply.status == 401, (route, token, reply.body)
            assert set(reply.body) == {"detail"}

    async def test_openapi_paths_match_the_routes_and_the_events(self, api: Api) -> None:
        document = await api.openapi()
        documented = {
            (method.upper(), path)
            for path, operations in document["paths"].items()
            for method in operations
        }
        assert documented == {
            ("GET", "/health"),
            ("GET", "/api/conversations"),
            ("POST", "/api/conversations"),
            ("GET", "/api/conversations/recent/first"),
            ("GET", "/api/conversations/{conversation_id}"),
            ("PATCH", "/api/conversations/{conversation_id}"),
            ("DELETE", "/api/conversations/{conversation_id}"),
            ("GET", "/api/conversations/{conversation_id}/messages"),
            ("DELETE", "/api/me"),
            ("GET", "/api/me/export"),
        }
        events = {
            (
                (event := load_event(route))["requestContext"]["http"]["method"],
                event["rawPath"].replace(ID_PLACEHOLDER, "{conversation_id}"),
            )
            for route in ROUTES
        }
        assert events == documented
        schemes = document["components"]["securitySchemes"]
        assert [scheme["scheme"] for scheme in schemes.values()] == ["bearer"]
        docs = await api.document("/docs")
        assert docs.status == 200

    # --- create -------------------------------------------------------------------------------

    async def test_create_trims_the_title_and_lists_it(self, api: Api, alice: str) -> None:
        created = await self.create(api, alice, "  Trip to Lisbon \n")
        assert set(created) == CONVERSATION_KEYS
        assert created["title"] == "Trip to Lisbon"
        assert created["id"].startswith("thr_")
        listed = await api.call("list", alice, query="")
        assert listed.body == {"conversations": [created], "next_cursor": None}

    async def test_create_without_a_body_or_title(self, api: Api, alice: str) -> None:
        for body in (None, {}, {"title": None}):
            reply = await api.call("create", alice, body=body)
            assert reply.status == 201, body
            assert reply.body["title"] is None

    @pytest.mark.parametrize(
        ("body", "reason"),
        [
            ({"title": ""}, "at least 1 character"),
            ({"title": "   "}, "at least 1 character"),
            ({"title": "x" * 201}, "at most 200 characters"),
            ({"title": 5}, "valid string"),
            ({"title": "ok", "owner": "bob"}, "Extra inputs"),
        ],
    )
    async def test_create_refuses_bad_titles(
        self, api: Api, alice: str, body: dict[str, Any], reason: str
    ) -> None:
        reply = await api.call("create", alice, body=body)
        assert reply.status == 422
        assert reason in reply.body["detail"]
        listed = await api.call("list", alice, query="")
        assert listed.body["conversations"] == []

    async def test_create_accepts_200_characters_and_refuses_broken_json(
        self, api: Api, alice: str
    ) -> None:
        assert (await self.create(api, alice, "x" * 200))["title"] == "x" * 200
        broken = await api.call("create", alice, raw_body='{"title": ')
        assert broken.status == 422
        assert "JSON" in broken.body["detail"]

    # --- list and recent ----------------------------------------------------------------------

    async def test_list_pages_by_offset_and_by_cursor(self, api: Api, alice: str) -> None:
        ids = [(await self.create(api, alice, f"c{i}"))["id"] for i in range(5)]
        newest_first = list(reversed(ids))

        first = await api.call("list", alice, query="limit=2&offset=0")
        assert [c["id"] for c in first.body["conversations"]] == newest_first[:2]
        by_offset = await api.call("list", alice, query="limit=2&offset=2")
        assert [c["id"] for c in by_offset.body["conversations"]] == newest_first[2:4]

        seen, cursor = [], None
        while True:
            query = "limit=2" + (f"&after={cursor}" if cursor else "")
            page = await api.call("list", alice, query=query)
            assert page.status == 200
            seen += [c["id"] for c in page.body["conversations"]]
            cursor = page.body["next_cursor"]
            if cursor is None:
                break
        assert seen == newest_first
        default = await api.call("list", alice, query="")
        assert len(default.body["conversations"]) == 5

    @pytest.mark.parametrize(
        ("query", "status"),
        [
            ("limit=0", 422),
            ("limit=101", 422),
            ("limit=-1", 422),
            ("limit=ten", 422),
            ("offset=-1", 422),
            ("offset=1.5", 422),
            ("offset=100001", 422),
            ("after=not-a-cursor", 400),
            ("after=eyJ4IjoxfQ", 400),  # base64 JSON, but not a cursor
        ],
    )
    async def test_list_refuses_bad_paging(
        self, api: Api, alice: str, query: str, status: int
    ) -> None:
        reply = await api.call("list", alice, query=query)
        assert reply.status == status, reply.body
        assert reply.body["detail"]

    async def test_list_refuses_offset_with_cursor(self, api: Api, alice: str) -> None:
        for i in range(2):
            await self.create(api, alice, f"c{i}")
        cursor = (await api.call("list", alice, query="limit=1")).body["next_cursor"]
        reply = await api.call("list", alice, query=f"limit=1&offset=1&after={cursor}")
        assert reply.status == 400
        assert "offset or after" in reply.body["detail"]

    async def test_recent_first_is_null_then_the_latest_update(self, api: Api, alice: str) -> None:
        assert (await api.call("recent", alice)).body is None
        older = await self.create(api, alice, "older")
        newer = await self.create(api, alice, "newer")
        assert (await api.call("recent", alice)).body == newer
        await api.call("rename", alice, conversation_id=older["id"], body={"title": "touched"})
        recent = await api.call("recent", alice)
        assert (recent.body["id"], recent.body["title"]) == (older["id"], "touched")

    # --- get and messages ---------------------------------------------------------------------

    async def test_get_shows_what_the_chatkit_store_wrote(
        self, api: Api, store: PostgresStore, alice: str
    ) -> None:
        conversation = await self.create(api, alice, "Weather")
        thread_id, context = conversation["id"], Caller(user_id=alice)
        record = ToolCallRecord(
            call_id="call_1", name="get_weather", arguments={"city": "Lisbon"}, output="21 °C"
        )
        items: list[ThreadItem] = [
            user_message(thread_id, "Weather in Lisbon?", T0),
            tool_call(thread_id, record, T0 + timedelta(seconds=1)),
            assistant_message(thread_id, "It is 21 °C.", T0 + timedelta(seconds=2)),
            end_of_turn(thread_id, T0 + timedelta(seconds=3)),
        ]
        for item in items:
            await store.add_thread_item(thread_id, item, context)

        reply = await api.call("get", alice, conversation_id=thread_id)
        assert reply.status == 200
        assert set(reply.body) == CONVERSATION_KEYS | {"messages", "next_cursor"}
        assert reply.body["updated_at"] > conversation["updated_at"]
        messages = reply.body["messages"]
        assert [(m["id"], m["role"], m["content"]) for m in messages] == [
            (items[0].id, "user", "Weather in Lisbon?"),
            (items[1].id, "tool", "21 °C"),
            (items[2].id, "assistant", "It is 21 °C."),
        ]
        assert [set(m) for m in messages] == [
            {"id", "role", "content", "created_at"},
            {"id", "role", "content", "created_at", "tool_calls"},
            {"id", "role", "content", "created_at"},
        ]
        assert messages[1]["tool_calls"] == [
            {"id": "call_1", "name": "get_weather", "arguments": {"city": "Lisbon"},
             "output": "21 °C"}
        ]  # fmt: skip
        assert reply.body["next_cursor"] is None
        paged = await api.call("messages", alice, conversation_id=thread_id, query="")
        assert paged.body == {"messages": messages, "next_cursor": None}

    async def test_messages_page_with_a_cursor(
        self, api: Api, store: PostgresStore, alice: str
    ) -> None:
        thread_id = (await self.create(api, alice))["id"]
        context = Caller(user_id=alice)
        written = [user_message(thread_id, f"m{i}", T0) for i in range(5)]  # tied timestamps
        for item in written:
            await store.add_thread_item(thread_id, item, context)

        first = await api.call("get", alice, conversation_id=thread_id, query="limit=2")
        seen = [m["content"] for m in first.body["messages"]]
        cursor = first.body["next_cursor"]
        while cursor is not None:
            page = await api.call(
                "messages", alice, conversation_id=thread_id, query=f"limit=2&after={cursor}"
            )
            assert page.status == 200
            seen += [m["content"] for m in page.body["messages"]]
            cursor = page.body["next_cursor"]
        assert seen == [f"m{i}" for i in range(5)]

    @pytest.mark.parametrize(
        ("route", "query", "status"),
        [
            ("messages", "limit=0", 422),
            ("messages", "limit=101", 422),
            ("messages", "after=!!!", 422),  # not a cursor's alphabet: the schema says so
            ("messages", "after=", 422),
            ("messages", "after=bm90LWEtY3Vyc29y", 400),  # well-formed, but no page issued it
            ("get", "limit=0", 422),
            ("get", "limit=abc", 422),
        ],
    )
    async def test_messages_refuse_bad_paging(
        self, api: Api, alice: str, route: str, query: str, status: int
    ) -> None:
        thread_id = (await self.create(api, alice))["id"]
        reply = await api.call(route, alice, conversation_id=thread_id, query=query)
        assert reply.status == status, reply.body

    async def test_a_conversations_cursor_is_not_a_messages_cursor(
        self, api: Api, alice: str
    ) -> None:
        for i in range(2):
            await self.create(api, alice, f"c{i}")
        listed = await api.call("list", alice, query="limit=1")
        thread_id = listed.body["conversations"][0]["id"]
        reply = await api.call(
            "messages",
            alice,
            conversation_id=thread_id,
            query=f"after={listed.body['next_cursor']}",
        )
        assert reply.status == 400
        assert reply.body == {"detail": "Invalid cursor"}

    @pytest.mark.parametrize("route", ["get", "messages", "rename", "delete"])
    async def test_missing_conversation_is_404(self, api: Api, alice: str, route: str) -> None:
        reply = await api.call(route, alice, conversation_id="thr_does_not_exist")
        assert (reply.status, reply.body) == (404, NOT_FOUND)

    # --- rename -------------------------------------------------------------------------------

    async def test_rename_trims_and_moves_to_the_top(
        self, api: Api, store: PostgresStore, alice: str
    ) -> None:
        first = await self.create(api, alice, "first")
        await self.create(api, alice, "second")
        reply = await api.call(
            "rename", alice, conversation_id=first["id"], body={"title": "  renamed  "}
        )
        assert reply.status == 200
        assert set(reply.body) == CONVERSATION_KEYS
        assert (reply.body["id"], reply.body["title"]) == (first["id"], "renamed")
        assert reply.body["created_at"] == first["created_at"]
        assert reply.body["updated_at"] > first["updated_at"]
        listed = await api.call("list", alice, query="")
        assert listed.body["conversations"][0] == reply.body
        thread = await store.load_thread(first["id"], Caller(user_id=alice))
        assert thread.title == "renamed"  # what the ChatKit protocol now shows

    @pytest.mark.parametrize(
        "body",
        [{"title": ""}, {"title": " \t "}, {"title": "y" * 201}, {}, {"title": None}, None],
    )
    async def test_rename_refuses_bad_titles(
        self, api: Api, alice: str, body: dict[str, Any] | None
    ) -> None:
        conversation = await self.create(api, alice, "kept")
        reply = await api.call("rename", alice, conversation_id=conversation["id"], body=body)
        assert reply.status == 422, reply.body
        assert reply.body["detail"]
        after = await api.call("get", alice, conversation_id=conversation["id"])
        assert after.body["title"] == "kept"

    # --- delete -------------------------------------------------------------------------------

    async def test_delete_twice(self, api: Api, store: PostgresStore, alice: str) -> None:
        conversation = await self.create(api, alice)
        context = Caller(user_id=alice)
        await store.add_thread_item(
            conversation["id"], user_message(conversation["id"], "hi", T0), context
        )
        reply = await api.call("delete", alice, conversation_id=conversation["id"])
        assert (reply.status, reply.body) == (200, {"status": "deleted", "id": conversation["id"]})
        again = await api.call("delete", alice, conversation_id=conversation["id"])
        assert (again.status, again.body) == (404, NOT_FOUND)
        for route in ("get", "messages"):
            gone = await api.call(route, alice, conversation_id=conversation["id"])
            assert gone.status == 404
        items = await store.load_thread_items(conversation["id"], None, 10, "asc", context)
        assert items.data == []
        assert (await api.call("list", alice, query="")).body["conversations"] == []

    # --- the other user -----------------------------------------------------------------------

    async def test_bob_can_neither_see_nor_touch_alices_conversation(
        self, api: Api, store: PostgresStore, alice: str, bob: str
    ) -> None:
        conversation = await self.create(api, alice, "Alice's")
        thread_id = conversation["id"]
        await store.add_thread_item(
            thread_id, user_message(thread_id, "private", T0), Caller(user_id=alice)
        )
        before = await api.call("get", alice, conversation_id=thread_id)

        assert (await api.call("list", bob, query="")).body == {
            "conversations": [],
            "next_cursor": None,
        }
        assert (await api.call("recent", bob)).body is None
        attempts: list[tuple[str, Callable[[], dict[str, Any]]]] = [
            ("get", dict),
            ("messages", dict),
            ("rename", lambda: {"body": {"title": "Bob's now"}}),
            ("delete", dict),
        ]
        for route, extra in attempts:
            reply = await api.call(route, bob, conversation_id=thread_id, **extra())
            assert (reply.status, reply.body) == (404, NOT_FOUND), route

        # a cursor made from alice's rows pages bob's own (empty) list, never alice's
        await self.create(api, alice, "second")
        cursor = (await api.call("list", alice, query="limit=1")).body["next_cursor"]
        bobs = await api.call("list", bob, query=f"after={cursor}")
        assert bobs.body["conversations"] == []

        after = await api.call("get", alice, conversation_id=thread_id)
        assert after.body == before.body
