"""The newest items a turn remembers: one read of them answered without a query, never more.

A turn reads its history, then the ChatKit SDK reads the same thread's two newest items; the
store answers that second read from the first (:meth:`PostgresStore.remember_newest`). What must
hold: only the same user, thread, and a newest-first page within what was read; once only; and
never after a write to the thread.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from chatkit.types import ThreadItem
from chatkit_backend.caller import Caller
from chatkit_backend.db import Database
from chatkit_backend.store import NewestItems, PostgresStore
from sqlalchemy import event

from tests.integration.core.store.store_samples import (
    assistant_message,
    saved_thread,
    user_message,
)


@pytest.fixture
def queries(database: Database) -> Iterator[Callable[[], int]]:
    """The number of statements the engine has executed since the fixture started."""
    count = 0

    def counted(*_: object) -> None:
        nonlocal count
        count += 1

    event.listen(database.engine.sync_engine, "before_cursor_execute", counted)
    yield lambda: count
    event.remove(database.engine.sync_engine, "before_cursor_execute", counted)


async def thread_with_items(store: PostgresStore, user: Caller) -> tuple[str, list[ThreadItem]]:
    """A thread of three items; the items newest first, as the store reads them."""
    thread = await saved_thread(store, user)
    items: list[ThreadItem] = [
        user_message(thread.id, "first"),
        assistant_message(thread.id, "answer"),
        user_message(thread.id, "second"),
    ]
    for item in items:
        await store.add_thread_item(thread.id, item, user)
    return thread.id, list(reversed(items))


async def test_one_read_of_the_newest_items_is_answered_from_memory(
    store: PostgresStore, alice: Caller, queries: Callable[[], int]
) -> None:
    thread_id, newest = await thread_with_items(store, alice)
    store.remember_newest(NewestItems(alice.user_id, thread_id, newest, has_more=True))
    before = queries()

    page = await store.load_thread_items(thread_id, None, 2, "desc", alice)

    assert queries() == before
    assert [item.id for item in page.data] == [item.id for item in newest[:2]]
    assert page.has_more
    assert page.after == newest[1].id
    again = await store.load_thread_items(thread_id, None, 2, "desc", alice)
    assert queries() == before + 1  # remembered for one read only
    assert again.data == page.data


async def test_a_read_it_cannot_answer_goes_to_the_database(
    store: PostgresStore, alice: Caller, bob: Caller, queries: Callable[[], int]
) -> None:
    thread_id, newest = await thread_with_items(store, alice)
    other_id, _ = await thread_with_items(store, alice)
    remembered = NewestItems(alice.user_id, thread_id, newest[:2], has_more=True)
    reads = [
        (bob, thread_id, None, 2, "desc"),  # another user: their (empty) view of the thread
        (alice, other_id, None, 2, "desc"),  # another thread
        (alice, thread_id, newest[0].id, 2, "desc"),  # after a cursor
        (alice, thread_id, None, 2, "asc"),  # oldest first
        (alice, thread_id, None, 3, "desc"),  # more than was read
    ]
    for user, thread, after, limit, order in reads:
        store.remember_newest(remembered)
        before = queries()
        page = await store.load_thread_items(thread, after, limit, order, user)
        assert queries() == before + 1, (user.user_id, thread, after, limit, order)
        if user is bob:
            assert page.data == []


async def test_a_write_to_the_thread_forgets_what_was_remembered(
    store: PostgresStore, alice: Caller, queries: Callable[[], int]
) -> None:
    thread_id, newest = await thread_with_items(store, alice)
    store.remember_newest(NewestItems(alice.user_id, thread_id, newest, has_more=False))
    answer = assistant_message(thread_id, "a newer answer")
    await store.add_thread_item(thread_id, answer, alice)
    before = queries()

    page = await store.load_thread_items(thread_id, None, 2, "desc", alice)

    assert queries() == before + 1
    assert [item.id for item in page.data] == [answer.id, newest[0].id]
