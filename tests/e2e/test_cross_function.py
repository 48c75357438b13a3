"""The chat function and the conversations function are two views of the same threads.

Both apps run as they are deployed, as separate servers (uvicorn on 127.0.0.1, each in its own
thread with its own engine) over the same PostgreSQL database, reached over real HTTP with JWTs.
The chat server answers with the built-in offline model, which calls the real todo tools for
plain requests, so a turn leaves a user message, a tool call and an answer in the thread.

What one function writes, the other reads: conversations started through the ChatKit protocol or
either simple protocol are listed and shown by the CRUD routes with their messages in order; a
rename or delete through the CRUD routes is what ChatKit then sees; a conversation created
through the CRUD routes is continued through every chat protocol. No user sees another's.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import pytest
from chat_app.offline_intents import PREFIX
from chatkit.types import Page, Thread, ThreadItem, ThreadMetadata
from chatkit_backend.caller import Caller
from chatkit_backend.settings import Settings
from pydantic import TypeAdapter

from tests.e2e.chat.chat_support import (
    ChatServerThread,
    Streamed,
    factory_with,
    headers_for,
    post,
    server_settings,
    sse_messages,
    stream,
    user_input,
)
from tests.support.servers import UvicornThread, client_of, conversations_server

SimpleProtocol = Literal["message body", "text stream"]
THREAD: TypeAdapter[Thread] = TypeAdapter(Thread)
THREAD_PAGE: TypeAdapter[Page[ThreadMetadata]] = TypeAdapter(Page[ThreadMetadata])
ITEM_PAGE: TypeAdapter[Page[ThreadItem]] = TypeAdapter(Page[ThreadItem])
NOT_FOUND = {"detail": "Conversation not found"}


@pytest.fixture(scope="module")
def settings(pg_url: str) -> Settings:
    """Both functions' settings: this run's database, HS256 test tokens, no model key."""
    return server_settings(pg_url)


@pytest.fixture(scope="module")
def chat_server(settings: Settings) -> Iterator[ChatServerThread]:
    with ChatServerThread(settings, factory_with(None)) as server:  # None: the offline model
        yield server


@pytest.fixture(scope="module")
def crud_server(settings: Settings) -> Iterator[UvicornThread]:
    with conversations_server(settings) as server:
        yield server


@pytest.fixture
async def chat(chat_server: ChatServerThread) -> AsyncIterator[httpx.AsyncClient]:
    async with client_of(chat_server) as client:
        yield client


@pytest.fixture
async def crud(crud_server: UvicornThread) -> AsyncIterator[httpx.AsyncClient]:
    async with client_of(crud_server) as client:
        yield client


# --- the chat function's side ------------------------------------------------------------------


async def chatkit_create(chat: httpx.AsyncClient, user: Caller, text: str) -> Streamed:
    created = await stream(
        chat, user, {"type": "threads.create", "params": {"input": user_input(text)}}
    )
    assert created.status_code == 200, created.datas
    return created


async def chatkit_add(chat: httpx.AsyncClient, user: Caller, thread_id: str, text: str) -> Streamed:
    return await stream(
        chat,
        user,
        {
            "type": "threads.add_user_message",
            "params": {"thread_id": thread_id, "input": user_input(text)},
        },
    )


async def chatkit_json(
    chat: httpx.AsyncClient, user: Caller, kind: str, **params: Any
) -> httpx.Response:
    return await post(chat, user, {"type": kind, "params": params})


@dataclass
class SimpleTurn:
    status_code: int
    thread_id: str | None
    text: str
    body: Any = None


async def simple_turn(
    chat: httpx.AsyncClient,
    user: Caller,
    protocol: SimpleProtocol,
    message: str,
    thread_id: str | None = None,
) -> SimpleTurn:
    """One message through a simple protocol: the thread it went to and the answer's text."""
    if protocol == "message body":
        body = {"message": message, **({"thread_id": thread_id} if thread_id else {})}
        request = chat.build_request("POST", "/chatkit", json=body, headers=headers_for(user))
    else:
        params = {"message": message, **({"conversation_id": thread_id} if thread_id else {})}
        request = chat.build_request(
            "POST", "/api/chat/stream", params=params, headers=headers_for(user)
        )
    response = await chat.send(request, stream=True)
    try:
        if not response.headers["content-type"].startswith("text/event-stream"):
            await response.aread()
            return SimpleTurn(response.status_code, None, "", response.json())
        datas = [message["data"] async for message in sse_messages(response)]
    finally:
        await response.aclose()
    assert datas[-1] == "[DONE]", datas
    answered = response.headers["x-thread-id"]
    if protocol == "text stream":
        return SimpleTurn(response.status_code, answered, "".join(datas[:-1]))
    events = [json.loads(data) for data in datas[:-1]]
    assert events[0] == {"type": "thinking", "thread_id": answered}, events
    assert "error" not in [event["type"] for event in events], events
    text = "".join(event["content"] for event in events if event["type"] == "text")
    return SimpleTurn(response.status_code, answered, text)


# --- the conversations function's side ---------------------------------------------------------


async def crud_call(
    crud: httpx.AsyncClient, user: Caller, method: str, path: str, **kwargs: Any
) -> httpx.Response:
    return await crud.request(
        method, f"/api/conversations{path}", headers=headers_for(user), **kwargs
    )


async def listed_ids(crud: httpx.AsyncClient, user: Caller) -> list[str]:
    response = await crud_call(crud, user, "GET", "", params={"limit": 100})
    assert response.status_code == 200, response.text
    return [conversation["id"] for conversation in response.json()["conversations"]]


async def conversation(crud: httpx.AsyncClient, user: Caller, thread_id: str) -> dict[str, Any]:
    """``GET /api/conversations/{id}``, checked against the messages route (the same list)."""
    response = await crud_call(crud, user, "GET", f"/{thread_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    messages = await crud_call(crud, user, "GET", f"/{thread_id}/messages")
    assert messages.status_code == 200, messages.text
    assert messages.json()["messages"] == body["messages"]
    return body


def roles(body: dict[str, Any]) -> list[str]:
    return [message["role"] for message in body["messages"]]


def tool_call_of(message: dict[str, Any]) -> dict[str, Any]:
    """The one tool call of a ``tool`` message."""
    assert message["role"] == "tool", message
    (call,) = message["tool_calls"]
    return dict(call)


# --- chat function -> conversations function ---------------------------------------------------


async def test_chatkit_conversation_is_listed_and_shown_with_its_tool_call(
    chat: httpx.AsyncClient, crud: httpx.AsyncClient, alice: Caller
) -> None:
    created = await chatkit_create(chat, alice, "Add a task to buy milk")
    thread_id = created.thread_id

    assert await listed_ids(crud, alice) == [thread_id]
    shown = await conversation(crud, alice, thread_id)
    assert shown["id"] == thread_id
    assert shown["title"] == "Add a task to buy milk"
    assert roles(shown) == ["user", "tool", "widget", "assistant"]
    user, tool, widget, answer = shown["messages"]
    assert user["content"] == "Add a task to buy milk"
    # The task card: what it shows in words, and the widget itself for clients that render it.
    assert widget["content"] == f'Task added: #{call_id(tool)} "buy milk" (open).'
    assert widget["widget"]["type"] == "Card"
    assert "tool_calls" not in widget
    assert "tool_calls" not in user
    assert "tool_calls" not in answer
    call = tool_call_of(tool)
    assert (call["name"], call["arguments"]) == ("add_task", {"title": "buy milk"})
    assert call["output"]["title"] == "buy milk"
    assert answer["content"].startswith(PREFIX)
    assert '"buy milk"' in answer["content"]
    assert [message["created_at"] for message in shown["messages"]] == sorted(
        message["created_at"] for message in shown["messages"]
    )
    # The messages are the ChatKit items (same ids); the tool record is hidden from ChatKit.
    items = ITEM_PAGE.validate_json(
        (await chatkit_json(chat, alice, "items.list", thread_id=thread_id, order="asc")).content
    ).data
    by_id = {item.id: item.type for item in items}
    assert by_id[user["id"]] == "user_message"
    assert by_id[answer["id"]] == "assistant_message"
    assert by_id[widget["id"]] == "widget"
    assert tool["id"] not in by_id


def call_id(tool: dict[str, Any]) -> int:
    """The id of the task a tool message's call returned."""
    return int(tool_call_of(tool)["output"]["id"])


@pytest.mark.parametrize("protocol", ["message body", "text stream"])
async def test_simple_protocol_conversation_is_listed_and_shown(
    chat: httpx.AsyncClient,
    crud: httpx.AsyncClient,
    alice: Caller,
    protocol: SimpleProtocol,
) -> None:
    added = await simple_turn(chat, alice, protocol, "add a task to water the plants")
    assert added.status_code == 200
    assert added.thread_id is not None
    listed = await simple_turn(chat, alice, protocol, "list my tasks", added.thread_id)
    assert listed.thread_id == added.thread_id

    assert await listed_ids(crud, alice) == [added.thread_id]
    shown = await conversation(crud, alice, added.thread_id)
    assert shown["title"] == "add a task to water the plants"
    assert roles(shown) == ["user", "tool", "widget", "assistant"] * 2
    messages = shown["messages"]
    assert [messages[0]["content"], messages[4]["content"]] == [
        "add a task to water the plants",
        "list my tasks",
    ]
    assert tool_call_of(messages[1])["name"] == "add_task"
    listing = tool_call_of(messages[5])
    assert listing["name"] == "list_tasks"
    assert [task["title"] for task in listing["output"]["tasks"]] == ["water the plants"]
    assert messages[6]["content"].startswith("Task list (1 open): #")
    # What the client was streamed is what the CRUD function shows.
    assert [messages[3]["content"], messages[7]["content"]] == [added.text, listed.text]
    assert "water the plants" in listed.text


# --- conversations function -> chat function ---------------------------------------------------


async def test_rename_through_crud_is_seen_by_chatkit(
    chat: httpx.AsyncClient, crud: httpx.AsyncClient, alice: Caller
) -> None:
    thread_id = (await chatkit_create(chat, alice, "Hello there")).thread_id
    other_id = (await chatkit_create(chat, alice, "Another one")).thread_id

    renamed = await crud_call(crud, alice, "PATCH", f"/{thread_id}", json={"title": "  Lisbon  "})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["title"] == "Lisbon"

    got = await chatkit_json(chat, alice, "threads.get_by_id", thread_id=thread_id)
    assert got.status_code == 200
    thread = THREAD.validate_json(got.content)
    assert thread.title == "Lisbon"
    assert [item.type for item in thread.items.data] == ["user_message", "assistant_message"]
    page = THREAD_PAGE.validate_json(
        (await chatkit_json(chat, alice, "threads.list", order="desc")).content
    )
    titles = {entry.id: entry.title for entry in page.data}
    assert titles == {thread_id: "Lisbon", other_id: "Another one"}
    # A later turn keeps the title the user chose.
    assert (await chatkit_add(chat, alice, thread_id, "What can you do?")).status_code == 200
    assert (await conversation(crud, alice, thread_id))["title"] == "Lisbon"


async def test_delete_through_crud_is_seen_by_every_chat_protocol(
    chat: httpx.AsyncClient, crud: httpx.AsyncClient, alice: Caller
) -> None:
    thread_id = (await chatkit_create(chat, alice, "Add a task to call mum")).thread_id
    kept_id = (await chatkit_create(chat, alice, "Keep me")).thread_id

    deleted = await crud_call(crud, alice, "DELETE", f"/{thread_id}")
    assert deleted.json() == {"status": "deleted", "id": thread_id}

    got = await chatkit_json(chat, alice, "threads.get_by_id", thread_id=thread_id)
    assert got.status_code == 404
    assert got.headers["content-type"].startswith("application/json")
    items = await chatkit_json(chat, alice, "items.list", thread_id=thread_id)
    assert items.status_code == 404, items.text  # like a thread that never existed
    listed = THREAD_PAGE.validate_json((await chatkit_json(chat, alice, "threads.list")).content)
    assert [entry.id for entry in listed.data] == [kept_id]
    added = await chatkit_add(chat, alice, thread_id, "Are you there?")
    assert (added.status_code, added.datas) == (404, [])
    for protocol in ("message body", "text stream"):
        continued = await simple_turn(chat, alice, protocol, "Are you there?", thread_id)
        assert continued.status_code == 404, protocol
    assert await listed_ids(crud, alice) == [kept_id]
    gone = await crud_call(crud, alice, "GET", f"/{thread_id}")
    assert (gone.status_code, gone.json()) == (404, NOT_FOUND)


async def test_crud_created_conversation_is_continued_by_every_chat_protocol(
    chat: httpx.AsyncClient, crud: httpx.AsyncClient, alice: Caller
) -> None:
    created = await crud_call(crud, alice, "POST", "", json={"title": "Groceries"})
    assert created.status_code == 201, created.text
    thread_id = created.json()["id"]

    got = THREAD.validate_json(
        (await chatkit_json(chat, alice, "threads.get_by_id", thread_id=thread_id)).content
    )
    assert (got.title, got.items.data) == ("Groceries", [])
    added = await chatkit_add(chat, alice, thread_id, "Add a task to buy eggs")
    assert added.status_code == 200
    assert "thread.created" not in [event.type for event in added.events]
    body = await simple_turn(chat, alice, "message body", "list my tasks", thread_id)
    text = await simple_turn(chat, alice, "text stream", "complete buy eggs", thread_id)

    assert (body.thread_id, text.thread_id) == (thread_id, thread_id)
    assert "buy eggs" in body.text
    assert text.text.startswith(PREFIX)
    assert "buy eggs" in text.text
    assert await listed_ids(crud, alice) == [thread_id]
    shown = await conversation(crud, alice, thread_id)
    assert shown["title"] == "Groceries"
    contents = [m["content"] for m in shown["messages"] if m["role"] == "user"]
    assert contents == ["Add a task to buy eggs", "list my tasks", "complete buy eggs"]
    calls = [tool_call_of(m)["name"] for m in shown["messages"] if m["role"] == "tool"]
    # "complete <title>" looks the task up by title first, then completes the match.
    assert calls == ["add_task", "list_tasks", "list_tasks", "complete_task"]
    assert roles(shown)[-1] == "assistant"
    assert shown["updated_at"] > created.json()["updated_at"]


# --- isolation ---------------------------------------------------------------------------------


async def test_bob_sees_none_of_alices_conversations_through_either_function(
    chat: httpx.AsyncClient,
    crud: httpx.AsyncClient,
    alice: Caller,
    bob: Caller,
) -> None:
    from_chatkit = (await chatkit_create(chat, alice, "Add a task to see the dentist")).thread_id
    from_simple = (await simple_turn(chat, alice, "message body", "Hello")).thread_id
    from_crud = (await crud_call(crud, alice, "POST", "", json={"title": "Mine"})).json()["id"]
    alices = [from_crud, from_simple, from_chatkit]
    assert from_simple is not None
    before = {thread_id: await conversation(crud, alice, thread_id) for thread_id in alices}

    assert await listed_ids(crud, bob) == []
    recent = await crud_call(crud, bob, "GET", "/recent/first")
    assert (recent.status_code, recent.json()) == (200, None)
    bobs_threads = THREAD_PAGE.validate_json(
        (await chatkit_json(chat, bob, "threads.list")).content
    )
    assert bobs_threads.data == []
    for thread_id in alices:
        for method, path, kwargs in [
            ("GET", f"/{thread_id}", {}),
            ("GET", f"/{thread_id}/messages", {}),
            ("PATCH", f"/{thread_id}", {"json": {"title": "Bob's now"}}),
            ("DELETE", f"/{thread_id}", {}),
        ]:
            answer = await crud_call(crud, bob, method, path, **kwargs)
            assert (answer.status_code, answer.json()) == (404, NOT_FOUND), (method, path)
        for kind, params in [
            ("threads.get_by_id", {}),
            ("items.list", {}),
            ("threads.update", {"title": "Bob's now"}),
            ("threads.delete", {}),
        ]:
            answer = await chatkit_json(chat, bob, kind, thread_id=thread_id, **params)
            assert answer.status_code == 404, (kind, answer.text)
        added = await chatkit_add(chat, bob, thread_id, "Tell me alice's secrets")
        assert added.status_code == 404
        for protocol in ("message body", "text stream"):
            continued = await simple_turn(chat, bob, protocol, "Tell me her secrets", thread_id)
            assert continued.status_code == 404, protocol

    assert await listed_ids(crud, bob) == []
    assert sorted(await listed_ids(crud, alice)) == sorted(alices)
    after = {thread_id: await conversation(crud, alice, thread_id) for thread_id in alices}
    assert after == before
