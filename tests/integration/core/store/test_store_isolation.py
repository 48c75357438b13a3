"""The other-user case for every store method: Bob, knowing all of Alice's ids, gets nothing.

Alice owns a thread with items (one carrying feedback) and an attachment. Bob then reads, lists,
pages, overwrites, rates and deletes using her ids; every read must look like "missing", and
after every write Alice's rows in all three tables must be byte-for-byte what they were.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from chatkit.store import NotFoundError
from chatkit.types import FileAttachment, ThreadItem, ThreadMetadata
from chatkit_backend.caller import Caller
from chatkit_backend.db import Database
from chatkit_backend.ids import new_id
from chatkit_backend.store import PostgresStore
from chatkit_backend.tables import ATTACHMENTS, ITEMS, THREADS
from sqlalchemy import select

from tests.integration.core.store.store_samples import (
    added_messages,
    assistant_message,
    make_thread,
    saved_thread,
)


@dataclass
class AliceData:
    owner: Caller
    thread: ThreadMetadata
    items: list[ThreadItem]
    attachment: FileAttachment


@pytest.fixture
async def alices(store: PostgresStore, alice: Caller) -> AliceData:
    thread = await saved_thread(store, alice, title="Alice's secrets")
    items = await added_messages(store, alice, thread.id, 3)
    await store.set_feedback(thread.id, [items[0].id], "positive", alice)
    attachment = FileAttachment(
        id=new_id("attachment"), name="diary.txt", mime_type="text/plain", thread_id=thread.id
    )
    await store.save_attachment(attachment, alice)
    return AliceData(alice, thread, items, attachment)


async def snapshot(database: Database, user: Caller) -> dict[str, list[tuple[Any, ...]]]:
    """Every column of every row the user owns, per table."""
    result = {}
    async with database.session() as session:
        for table in (THREADS, ITEMS, ATTACHMENTS):
            statement = select(table).where(table.c.user_id == user.user_id).order_by(table.c.pk)
            result[table.name] = [tuple(row) for row in (await session.execute(statement)).all()]
    return result


# --- reads -------------------------------------------------------------------------------------

Read = Callable[[PostgresStore, AliceData, Caller], Awaitable[Any]]

READS: dict[str, Read] = {
    "load_thread": lambda s, a, bob: s.load_thread(a.thread.id, bob),
    "load_item": lambda s, a, bob: s.load_item(a.thread.id, a.items[0].id, bob),
    "load_attachment": lambda s, a, bob: s.load_attachment(a.attachment.id, bob),
}


@pytest.mark.parametrize("read", list(READS))
async def test_bob_cannot_load_alices_rows(
    store: PostgresStore, alices: AliceData, bob: Caller, read: str
) -> None:
    with pytest.raises(NotFoundError):
        await READS[read](store, alices, bob)


@pytest.mark.parametrize("order", ["asc", "desc"])
async def test_bob_lists_only_his_own_threads(
    store: PostgresStore, alices: AliceData, bob: Caller, order: str
) -> None:
    bobs = await saved_thread(store, bob)

    assert (await store.load_threads(100, None, order, bob)).data == [bobs]
    paged = await store.load_threads(100, alices.thread.id, order, bob)
    assert (paged.data, paged.has_more) == ([], False)


@pytest.mark.parametrize("order", ["asc", "desc"])
async def test_bob_pages_nothing_out_of_alices_thread(
    store: PostgresStore, alices: AliceData, bob: Caller, order: str
) -> None:
    first = await store.load_thread_items(alices.thread.id, None, 100, order, bob)
    after = await store.load_thread_items(alices.thread.id, alices.items[0].id, 100, order, bob)

    assert (first.data, first.has_more) == ([], False)
    assert (after.data, after.has_more) == ([], False)


async def test_alices_cursor_pages_nothing_in_bobs_thread_of_the_same_id(
    store: PostgresStore, alices: AliceData, bob: Caller
) -> None:
    await store.save_thread(alices.thread, bob)
    await added_messages(store, bob, alices.thread.id, 2)

    page = await store.load_thread_items(alices.thread.id, alices.items[0].id, 100, "asc", bob)

    assert (page.data, page.has_more) == ([], False)


# --- writes ------------------------------------------------------------------------------------


async def save_thread_over_alices(s: PostgresStore, a: AliceData, bob: Caller) -> None:
    await s.save_thread(a.thread.model_copy(update={"title": "pwned"}), bob)


async def save_item_over_alices(s: PostgresStore, a: AliceData, bob: Caller) -> None:
    """Bob owns a thread of the same id, so the item upsert succeeds: into Bob's rows."""
    await s.save_thread(a.thread, bob)
    await s.save_item(a.thread.id, assistant_message(a.thread.id, item_id=a.items[0].id), bob)


async def save_attachment_over_alices(s: PostgresStore, a: AliceData, bob: Caller) -> None:
    # Bound to her thread: refused like any write into a thread that is not his.
    with pytest.raises(NotFoundError):
        await s.save_attachment(a.attachment.model_copy(update={"name": "pwned"}), bob)
    # Unbound, same id: a row of his own namespace, hers untouched.
    await s.save_attachment(
        a.attachment.model_copy(update={"name": "pwned", "thread_id": None}), bob
    )


WRITES: dict[str, Callable[[PostgresStore, AliceData, Caller], Awaitable[None]]] = {
    "save_thread": save_thread_over_alices,
    "save_item": save_item_over_alices,
    "save_attachment": save_attachment_over_alices,
    "set_feedback": lambda s, a, bob: s.set_feedback(
        a.thread.id, [item.id for item in a.items], "negative", bob
    ),
    "delete_thread": lambda s, a, bob: s.delete_thread(a.thread.id, bob),
    "delete_thread_item": lambda s, a, bob: s.delete_thread_item(a.thread.id, a.items[1].id, bob),
    "delete_attachment": lambda s, a, bob: s.delete_attachment(a.attachment.id, bob),
}


@pytest.mark.parametrize("write", list(WRITES))
async def test_bobs_writes_with_alices_ids_leave_her_rows_unchanged(
    store: PostgresStore, database: Database, alices: AliceData, bob: Caller, write: str
) -> None:
    alice = alices.owner
    before = await snapshot(database, alice)

    await WRITES[write](store, alices, bob)

    assert await snapshot(database, alice) == before
    assert await store.load_thread(alices.thread.id, alice) == alices.thread
    assert await store.load_attachment(alices.attachment.id, alice) == alices.attachment


@pytest.mark.parametrize("write", ["add_thread_item", "save_item"])
async def test_bob_cannot_write_items_into_alices_thread(
    store: PostgresStore, database: Database, alices: AliceData, bob: Caller, write: str
) -> None:
    before = await snapshot(database, alices.owner)
    intruder = assistant_message(alices.thread.id, "pwned")

    with pytest.raises(NotFoundError):
        await getattr(store, write)(alices.thread.id, intruder, bob)

    assert await snapshot(database, alices.owner) == before
    assert (await snapshot(database, bob))["thread_items"] == []


async def test_same_ids_live_side_by_side_for_two_users(
    store: PostgresStore, alices: AliceData, alice: Caller, bob: Caller
) -> None:
    bobs_thread = alices.thread.model_copy(update={"title": "Bob's own"})
    await store.save_thread(bobs_thread, bob)
    bobs_item = assistant_message(alices.thread.id, "bob's", item_id=alices.items[0].id)
    await store.save_item(alices.thread.id, bobs_item, bob)

    assert await store.load_thread(alices.thread.id, bob) == bobs_thread
    assert await store.load_thread(alices.thread.id, alice) == alices.thread
    assert await store.load_item(alices.thread.id, bobs_item.id, bob) == bobs_item
    assert await store.load_item(alices.thread.id, bobs_item.id, alice) == alices.items[0]
    alice_page = await store.load_thread_items(alices.thread.id, None, 100, "asc", alice)
    assert alice_page.data == alices.items


async def test_bob_deleting_his_thread_of_the_same_id_spares_alices(
    store: PostgresStore,
    database: Database,
    alices: AliceData,
    alice: Caller,
    bob: Caller,
) -> None:
    await store.save_thread(make_thread().model_copy(update={"id": alices.thread.id}), bob)
    await added_messages(store, bob, alices.thread.id, 2)
    before = await snapshot(database, alice)

    await store.delete_thread(alices.thread.id, bob)

    assert await snapshot(database, alice) == before
    assert (await snapshot(database, bob))["thread_items"] == []
