"""Threads: save/update/load/delete, the mirrored columns, and id generation."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from chatkit.store import NotFoundError
from chatkit.types import ClosedStatus
from chatkit_backend.caller import Caller
from chatkit_backend.db import Database
from chatkit_backend.store import PostgresStore
from chatkit_backend.tables import ITEMS, THREADS
from sqlalchemy import Row

from tests.integration.core.store.store_samples import (
    added_messages,
    make_thread,
    naive,
    saved_thread,
    table_rows,
)

LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)


async def set_updated_at(database: Database, user: Caller, thread_id: str) -> None:
    """Push a thread's ``updated_at`` into the past, so any bump is visible."""
    statement = (
        THREADS.update()
        .where(THREADS.c.user_id == user.user_id, THREADS.c.id == thread_id)
        .values(updated_at=LONG_AGO)
    )
    async with database.session() as session:
        await session.execute(statement)


async def thread_row(database: Database, user: Caller, thread_id: str) -> Row[Any]:
    [row] = await table_rows(database, THREADS, user_id=user.user_id, id=thread_id)
    return row


async def test_save_then_load(store: PostgresStore, alice: Caller) -> None:
    thread = make_thread(title="First", metadata={"k": "v"})

    await store.save_thread(thread, alice)

    assert await store.load_thread(thread.id, alice) == thread


async def test_saving_again_updates_the_thread(
    store: PostgresStore, database: Database, alice: Caller
) -> None:
    thread = await saved_thread(store, alice, title="Draft")
    await set_updated_at(database, alice, thread.id)
    updated = thread.model_copy(
        update={"title": "Final", "status": ClosedStatus(reason="done"), "metadata": {"x": 1}}
    )

    await store.save_thread(updated, alice)

    assert await store.load_thread(thread.id, alice) == updated
    rows = await table_rows(database, THREADS, user_id=alice.user_id, id=thread.id)
    assert len(rows) == 1
    assert rows[0].title == "Final"
    assert rows[0].updated_at > LONG_AGO


async def test_the_first_save_fixes_the_creation_time_column(
    store: PostgresStore, database: Database, alice: Caller
) -> None:
    thread = await saved_thread(store, alice, created_at=naive())

    await store.save_thread(thread.model_copy(update={"created_at": naive(3600)}), alice)

    row = await thread_row(database, alice, thread.id)
    assert row.created_at == naive().replace(tzinfo=UTC)


async def test_adding_an_item_bumps_updated_at(
    store: PostgresStore, database: Database, alice: Caller
) -> None:
    thread = await saved_thread(store, alice)
    await set_updated_at(database, alice, thread.id)

    await added_messages(store, alice, thread.id, 1)

    row = await thread_row(database, alice, thread.id)
    assert row.updated_at > LONG_AGO


LOAD_MISSING: dict[str, Callable[[PostgresStore, Caller], Awaitable[Any]]] = {
    "thread": lambda store, user: store.load_thread("thr_missing", user),
    "attachment": lambda store, user: store.load_attachment("atc_missing", user),
}


@pytest.mark.parametrize("row", list(LOAD_MISSING))
async def test_load_of_a_missing_row_raises_not_found(
    store: PostgresStore, alice: Caller, row: str
) -> None:
    with pytest.raises(NotFoundError):
        await LOAD_MISSING[row](store, alice)


async def test_delete_removes_the_thread_and_its_items_in_the_database(
    store: PostgresStore, database: Database, alice: Caller
) -> None:
    doomed = await saved_thread(store, alice)
    kept = await saved_thread(store, alice)
    await added_messages(store, alice, doomed.id, 3)
    kept_items = await added_messages(store, alice, kept.id, 2)

    await store.delete_thread(doomed.id, alice)

    assert await table_rows(database, THREADS, user_id=alice.user_id, id=doomed.id) == []
    assert await table_rows(database, ITEMS, user_id=alice.user_id, thread_id=doomed.id) == []
    with pytest.raises(NotFoundError):
        await store.load_thread(doomed.id, alice)
    assert await store.load_thread(kept.id, alice) == kept
    assert (await store.load_thread_items(kept.id, None, 10, "asc", alice)).data == kept_items


async def test_delete_of_a_missing_thread_is_a_no_op(store: PostgresStore, alice: Caller) -> None:
    kept = await saved_thread(store, alice)

    await store.delete_thread("thr_missing", alice)

    assert (await store.load_threads(10, None, "asc", alice)).data == [kept]


@pytest.mark.parametrize(
    ("generate", "prefix"),
    [
        (lambda s, ctx: s.generate_thread_id(ctx), "thr"),
        (lambda s, ctx: s.generate_item_id("message", make_thread(), ctx), "msg"),
        (lambda s, ctx: s.generate_item_id("tool_call", make_thread(), ctx), "tc"),
        (lambda s, ctx: s.generate_item_id("sdk_hidden_context", make_thread(), ctx), "shcx"),
        (lambda s, ctx: s.generate_attachment_id("image/png", ctx), "atc"),
    ],
    ids=["thread", "message", "tool_call", "sdk_hidden_context", "attachment"],
)
def test_generated_ids_carry_128_random_bits(
    store: PostgresStore, alice: Caller, generate: object, prefix: str
) -> None:
    ids = {generate(store, alice) for _ in range(50)}  # type: ignore[operator]

    assert len(ids) == 50
    assert all(re.fullmatch(rf"{prefix}_[0-9a-f]{{32}}", value) for value in ids)
