"""ConversationService on both databases: ordering, keyset paging, projection, user scope.

The HTTP shapes and status codes are covered by the route suites; this one pins down the data
rules with many rows: ties in time, deep pages, items the REST view must skip, and what the
ChatKit store sees after a REST write.
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import partial

import pytest
from chatkit.store import NotFoundError
from chatkit.types import ThreadItem
from chatkit_backend.caller import Caller
from chatkit_backend.db import Database
from chatkit_backend.errors import BadRequest, NotFound
from chatkit_backend.store import PostgresStore
from chatkit_backend.tables import ITEMS, THREADS
from chatkit_backend.tool_calls import ToolCallRecord
from conversations_app.cursors import decode_cursor, encode_cursor
from conversations_app.schemas import ConversationPage, MessagePage
from conversations_app.service import ConversationService
from sqlalchemy import func, select, update

from tests.integration.conversations.chat_items import (
    assistant_message,
    end_of_turn,
    tool_call,
    user_message,
)

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(any_database: Database) -> PostgresStore:
    return PostgresStore(any_database)


@pytest.fixture
def service(any_database: Database) -> ConversationService:
    return ConversationService(any_database)


async def create_many(service: ConversationService, user: Caller, count: int) -> list[str]:
    return [(await service.create(user, f"c{index}")).id for index in range(count)]


async def set_updated_at(database: Database, user: Caller, ids: list[str], at: datetime) -> None:
    async with database.session() as session:
        await session.execute(
            update(THREADS)
            .where(THREADS.c.user_id == user.user_id, THREADS.c.id.in_(ids))
            .values(updated_at=at)
        )


Page = ConversationPage | MessagePage


async def list_page(
    service: ConversationService, user: Caller, limit: int, cursor: str | None
) -> Page:
    return await service.list(user, limit=limit, after=cursor)


async def messages_page(
    service: ConversationService,
    user: Caller,
    conversation_id: str,
    limit: int,
    cursor: str | None,
) -> Page:
    return await service.messages(user, conversation_id, limit=limit, after=cursor)


async def walk(fetch: Callable[[str | None], Awaitable[Page]]) -> list[str]:
    """Follow ``next_cursor`` from the first page to the last, collecting ids."""
    seen: list[str] = []
    cursor: str | None = None
    while True:
        page = await fetch(cursor)
        rows = page.conversations if isinstance(page, ConversationPage) else page.messages
        seen.extend(row.id for row in rows)
        if page.next_cursor is None:
            return seen
        cursor = page.next_cursor


async def test_create_is_a_chatkit_thread(
    service: ConversationService, store: PostgresStore, alice: Caller
) -> None:
    created = await service.create(alice, "Trip")
    thread = await store.load_thread(created.id, alice)
    assert (thread.id, thread.title) == (created.id, "Trip")
    assert created.created_at <= created.updated_at
    untitled = await service.create(alice)
    assert untitled.title is None
    assert (await store.load_thread(untitled.id, alice)).title is None


async def test_list_is_most_recently_updated_first(
    service: ConversationService, alice: Caller
) -> None:
    first, second, third = await create_many(service, alice, 3)
    await service.rename(alice, first, "renamed")
    page = await service.list(alice)
    assert [c.id for c in page.conversations] == [first, third, second]
    assert page.next_cursor is None
    recent = await service.most_recent(alice)
    assert recent is not None
    assert recent.id == first


async def test_cursor_walk_visits_every_row_once_despite_ties(
    service: ConversationService, any_database: Database, alice: Caller
) -> None:
    ids = await create_many(service, alice, 25)
    await set_updated_at(any_database, alice, ids, T0)  # all tied: pk decides
    expected = list(reversed(ids))

    for limit in (1, 4, 24, 25, 26):
        seen = await walk(partial(list_page, service, alice, limit))
        assert seen == expected, limit

    by_offset = [
        c.id
        for offset in range(0, 25, 4)
        for c in (await service.list(alice, limit=4, offset=offset)).conversations
    ]
    assert by_offset == expected


async def test_offset_page_hands_out_a_cursor_to_continue_with(
    service: ConversationService, alice: Caller
) -> None:
    ids = list(reversed(await create_many(service, alice, 5)))
    page = await service.list(alice, limit=2, offset=1)
    assert [c.id for c in page.conversations] == ids[1:3]
    assert page.next_cursor is not None
    rest = await service.list(alice, limit=10, after=page.next_cursor)
    assert [c.id for c in rest.conversations] == ids[3:]


def token(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode()


BAD_CURSORS = [
    "",
    "not base64!",
    token("not json"),
    token("{}"),
    token('["conversations"]'),
    token('["conversations","2026-01-01T12:00:00",7]'),  # naive time
    token('["conversations","2026-01-01T12:00:00+00:00",0]'),  # no such pk
    token('["conversations","2026-01-01T12:00:00+00:00","7"]'),
    token('["conversations","yesterday",7]'),
    token('["conversations","2026-01-01T12:00:00+00:00",9223372036854775808]'),  # > BIGINT
    token("[" * 5000 + "]" * 5000),  # too long to be a cursor
    encode_cursor("messages", T0, 7),  # a cursor of the other kind
]


@pytest.mark.parametrize("cursor", BAD_CURSORS)
def test_bad_cursors_are_refused(cursor: str) -> None:
    with pytest.raises(BadRequest, match="Invalid cursor"):
        decode_cursor("conversations", cursor)


def test_cursor_round_trip() -> None:
    assert decode_cursor("conversations", encode_cursor("conversations", T0, 7)) == (T0, 7)


async def test_list_refuses_bad_cursor_and_mixed_modes(
    service: ConversationService, alice: Caller
) -> None:
    with pytest.raises(BadRequest, match="Invalid cursor"):
        await service.list(alice, after="garbage")
    with pytest.raises(BadRequest, match="either offset or after"):
        await service.list(alice, offset=1, after=encode_cursor("conversations", T0, 1))


async def test_messages_in_creation_order_with_tool_calls(
    service: ConversationService, store: PostgresStore, alice: Caller
) -> None:
    conversation = await service.create(alice, "Weather")
    record = ToolCallRecord(
        call_id="call_1", name="get_weather", arguments={"city": "Lisbon"}, output={"temp_c": 21}
    )
    failed = ToolCallRecord(call_id="call_2", name="get_time", error="timeout")
    items: list[ThreadItem] = [
        user_message(conversation.id, "Weather in Lisbon?", T0),
        tool_call(conversation.id, record, T0),  # same instant: pk keeps write order
        tool_call(conversation.id, failed, T0),
        end_of_turn(conversation.id, T0 + timedelta(seconds=1)),  # not a message
        assistant_message(conversation.id, "21 °C and sunny.", T0 + timedelta(seconds=2)),
    ]
    for item in items:
        await store.add_thread_item(conversation.id, item, alice)

    detail = await service.get(alice, conversation.id)
    assert [(m.role, m.content) for m in detail.messages] == [
        ("user", "Weather in Lisbon?"),
        ("tool", '{"temp_c": 21}'),
        ("tool", "timeout"),
        ("assistant", "21 °C and sunny."),
    ]
    assert [m.id for m in detail.messages] == [items[i].id for i in (0, 1, 2, 4)]
    calls = [m.model_dump(mode="json").get("tool_calls") for m in detail.messages]
    assert calls == [
        None,
        [
            {
                "id": "call_1",
                "name": "get_weather",
                "arguments": {"city": "Lisbon"},
                "output": {"temp_c": 21},
            }
        ],
        [{"id": "call_2", "name": "get_time", "arguments": {}, "output": None, "error": "timeout"}],
        None,
    ]
    assert detail.next_cursor is None
    assert detail.updated_at >= conversation.updated_at  # adding items bumps the conversation


async def test_message_pages_walk_ties_in_order(
    service: ConversationService, store: PostgresStore, alice: Caller
) -> None:
    conversation = await service.create(alice, "Long")
    items = [user_message(conversation.id, f"m{i}", T0) for i in range(25)]
    for item in items:
        await store.add_thread_item(conversation.id, item, alice)
    expected = [item.id for item in items]

    for limit in (1, 7, 25, 26):
        seen = await walk(partial(messages_page, service, alice, conversation.id, limit))
        assert seen == expected, limit
    first = await service.get(alice, conversation.id, limit=10)
    assert [m.id for m in first.messages] == expected[:10]
    assert first.next_cursor is not None
    rest = await service.messages(alice, conversation.id, limit=100, after=first.next_cursor)
    assert [m.id for m in rest.messages] == expected[10:]
    with pytest.raises(BadRequest):
        await service.messages(alice, conversation.id, after=encode_cursor("conversations", T0, 1))


async def test_rename_and_delete_are_seen_by_the_chatkit_store(
    service: ConversationService,
    store: PostgresStore,
    any_database: Database,
    alice: Caller,
) -> None:
    conversation = await service.create(alice, "Old")
    for i in range(3):
        await store.add_thread_item(
            conversation.id, user_message(conversation.id, f"{i}", T0), alice
        )

    turns_copy = await store.load_thread(conversation.id, alice)  # read before the rename
    renamed = await service.rename(alice, conversation.id, "New")
    assert renamed.title == "New"
    assert renamed.updated_at >= conversation.updated_at
    assert (await store.load_thread(conversation.id, alice)).title == "New"

    # A chat turn saving its older copy (or a generated title) keeps the user's title.
    await store.save_thread(turns_copy.model_copy(update={"title": "Generated"}), alice)
    kept = await store.load_thread(conversation.id, alice)
    assert (kept.title, kept.metadata) == ("New", {"title_source": "user"})

    deleted = await service.delete(alice, conversation.id)
    assert deleted.model_dump() == {"status": "deleted", "id": conversation.id}
    with pytest.raises(NotFoundError):
        await store.load_thread(conversation.id, alice)
    async with any_database.session() as session:
        left = await session.scalar(
            select(func.count()).select_from(ITEMS).where(ITEMS.c.thread_id == conversation.id)
        )
    assert left == 0
    with pytest.raises(NotFound, match="Conversation not found"):
        await service.delete(alice, conversation.id)


async def test_other_users_see_nothing_and_change_nothing(
    service: ConversationService, store: PostgresStore, alice: Caller, bob: Caller
) -> None:
    conversation = await service.create(alice, "Alice's")
    await store.add_thread_item(conversation.id, user_message(conversation.id, "secret", T0), alice)

    assert (await service.list(bob)).conversations == []
    assert await service.most_recent(bob) is None
    for attempt in (
        service.get(bob, conversation.id),
        service.messages(bob, conversation.id),
        service.rename(bob, conversation.id, "Bob's now"),
        service.delete(bob, conversation.id),
    ):
        with pytest.raises(NotFound, match="Conversation not found"):
            await attempt

    after = await service.get(alice, conversation.id)
    assert (after.title, [m.content for m in after.messages]) == ("Alice's", ["secret"])
    assert after.updated_at == (await service.list(alice)).conversations[0].updated_at
