"""Thread items: idempotent adds, upserting saves, loads, deletes, feedback."""

from __future__ import annotations

import pytest
from chatkit.store import NotFoundError
from chatkit_backend.caller import Caller
from chatkit_backend.db import Database
from chatkit_backend.store import PostgresStore
from chatkit_backend.tables import ITEMS

from tests.integration.core.store.store_samples import (
    added_messages,
    assistant_message,
    naive,
    saved_thread,
    table_rows,
)


async def test_adding_the_same_id_twice_keeps_the_first_version(
    store: PostgresStore, database: Database, alice: Caller
) -> None:
    thread = await saved_thread(store, alice)
    first = assistant_message(thread.id, "first")
    retry = first.model_copy(update={"content": assistant_message(thread.id, "second").content})

    await store.add_thread_item(thread.id, first, alice)
    await store.add_thread_item(thread.id, retry, alice)

    assert await store.load_item(thread.id, first.id, alice) == first
    rows = await table_rows(database, ITEMS, user_id=alice.user_id, id=first.id)
    assert [row.content_text for row in rows] == ["first"]


async def test_a_retried_add_does_not_clobber_a_later_save(
    store: PostgresStore, alice: Caller
) -> None:
    thread = await saved_thread(store, alice)
    streamed = assistant_message(thread.id, "partial")
    final = streamed.model_copy(update={"content": assistant_message(thread.id, "final").content})

    await store.add_thread_item(thread.id, streamed, alice)
    await store.save_item(thread.id, final, alice)
    await store.add_thread_item(thread.id, streamed, alice)

    assert await store.load_item(thread.id, streamed.id, alice) == final


async def test_save_item_inserts_then_replaces_and_keeps_the_position(
    store: PostgresStore, database: Database, alice: Caller
) -> None:
    thread = await saved_thread(store, alice)
    before, item, after = (assistant_message(thread.id, t, created_at=naive()) for t in "abc")
    for entry in (before, item, after):
        await store.save_item(thread.id, entry, alice)
    replacement = item.model_copy(
        update={
            "content": assistant_message(thread.id, "replaced").content,
            "created_at": naive(3600),
        }
    )

    await store.save_item(thread.id, replacement, alice)

    assert await store.load_item(thread.id, item.id, alice) == replacement
    page = await store.load_thread_items(thread.id, None, 10, "asc", alice)
    assert [entry.id for entry in page.data] == [before.id, item.id, after.id]
    rows = await table_rows(database, ITEMS, user_id=alice.user_id, id=item.id)
    assert [row.content_text for row in rows] == ["replaced"]


async def test_save_item_keeps_feedback(
    store: PostgresStore, database: Database, alice: Caller
) -> None:
    thread = await saved_thread(store, alice)
    item = assistant_message(thread.id, "answer")
    await store.add_thread_item(thread.id, item, alice)
    await store.set_feedback(thread.id, [item.id], "positive", alice)

    await store.save_item(thread.id, item, alice)

    [row] = await table_rows(database, ITEMS, user_id=alice.user_id, id=item.id)
    assert row.feedback == "positive"


@pytest.mark.parametrize("write", ["add_thread_item", "save_item"])
async def test_writing_into_a_missing_thread_raises_not_found_and_writes_nothing(
    store: PostgresStore, database: Database, alice: Caller, write: str
) -> None:
    item = assistant_message("thr_missing")

    with pytest.raises(NotFoundError):
        await getattr(store, write)("thr_missing", item, alice)

    assert await table_rows(database, ITEMS, user_id=alice.user_id) == []


async def test_load_item_of_a_missing_item_raises_not_found(
    store: PostgresStore, alice: Caller
) -> None:
    thread = await saved_thread(store, alice)

    with pytest.raises(NotFoundError):
        await store.load_item(thread.id, "msg_missing", alice)


async def test_load_item_through_the_wrong_thread_raises_not_found(
    store: PostgresStore, alice: Caller
) -> None:
    home = await saved_thread(store, alice)
    other = await saved_thread(store, alice)
    [item] = await added_messages(store, alice, home.id, 1)

    with pytest.raises(NotFoundError):
        await store.load_item(other.id, item.id, alice)


async def test_delete_item_removes_only_that_item(
    store: PostgresStore, database: Database, alice: Caller
) -> None:
    thread = await saved_thread(store, alice)
    first, doomed, last = await added_messages(store, alice, thread.id, 3)

    await store.delete_thread_item(thread.id, doomed.id, alice)

    assert await table_rows(database, ITEMS, user_id=alice.user_id, id=doomed.id) == []
    page = await store.load_thread_items(thread.id, None, 10, "asc", alice)
    assert page.data == [first, last]
    with pytest.raises(NotFoundError):
        await store.load_item(thread.id, doomed.id, alice)


async def test_delete_of_a_missing_item_is_a_no_op(store: PostgresStore, alice: Caller) -> None:
    thread = await saved_thread(store, alice)
    items = await added_messages(store, alice, thread.id, 2)

    await store.delete_thread_item(thread.id, "msg_missing", alice)
    await store.delete_thread_item("thr_missing", items[0].id, alice)

    assert (await store.load_thread_items(thread.id, None, 10, "asc", alice)).data == items


async def test_feedback_is_written_for_the_named_items_only(
    store: PostgresStore, database: Database, alice: Caller
) -> None:
    thread = await saved_thread(store, alice)
    other_thread = await saved_thread(store, alice)
    liked, disliked, untouched = await added_messages(store, alice, thread.id, 3)
    [elsewhere] = await added_messages(store, alice, other_thread.id, 1)

    await store.set_feedback(thread.id, [liked.id, disliked.id, elsewhere.id], "positive", alice)
    await store.set_feedback(thread.id, [disliked.id, "msg_missing"], "negative", alice)
    await store.set_feedback(thread.id, [], "negative", alice)

    rows = await table_rows(database, ITEMS, user_id=alice.user_id)
    feedback = {row.id: row.feedback for row in rows}
    assert feedback == {
        liked.id: "positive",
        disliked.id: "negative",
        untouched.id: None,
        elsewhere.id: None,
    }
