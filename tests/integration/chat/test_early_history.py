"""A new message's history read with its thread: one statement, the same thread and the same page
as two reads would give, for that user's thread only, once, and nothing left behind when the
thread is missing or nobody takes the page. Both databases."""

from __future__ import annotations

import asyncio
import contextvars
import gc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from chat_app.early_history import take_early_history, want_early_history
from chat_app.service import CHATKIT_REQUEST
from chatkit.store import NotFoundError
from chatkit.types import StreamingReq
from chatkit_backend.caller import Caller
from chatkit_backend.db import Database
from chatkit_backend.store import NewestWanted, PostgresStore
from sqlalchemy import event

from tests.integration.core.store.store_samples import (
    assistant_message,
    saved_thread,
    user_message,
)

LIMIT = 3


def add_message(thread_id: str, text: str = "next") -> StreamingReq:
    request = CHATKIT_REQUEST.validate_python(
        {
            "type": "threads.add_user_message",
            "params": {
                "thread_id": thread_id,
                "input": {
                    "content": [{"type": "input_text", "text": text}],
                    "attachments": [],
                    "inference_options": {},
                },
            },
        }
    )
    assert not isinstance(request, str)
    return request  # type: ignore[return-value]


@pytest.fixture
def store(any_database: Database) -> PostgresStore:
    return PostgresStore(any_database)


@pytest.fixture
async def loop_errors() -> list[dict[str, Any]]:
    """What the event loop reports as unhandled (an exception nobody retrieved, ...)."""
    reported: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _, context: reported.append(context))
    return reported


@contextmanager
def statements(database: Database) -> Iterator[list[str]]:
    """The SQL statements ``database`` runs in the block."""
    seen: list[str] = []

    def note(*args: Any) -> None:
        seen.append(args[2])

    event.listen(database.engine.sync_engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(database.engine.sync_engine, "before_cursor_execute", note)


async def a_thread(store: PostgresStore, user: Caller, exchanges: int = 1) -> str:
    thread = await saved_thread(store, user)
    for number in range(exchanges):
        for item in (user_message(thread.id, f"q{number}"), assistant_message(thread.id, "a")):
            await store.add_thread_item(thread.id, item, user)
    return thread.id


async def in_a_turn(
    store: PostgresStore, request: StreamingReq, user: Caller, thread_id: str
) -> tuple[NewestWanted | None, Any]:
    """Ask for the history as the chat service does, then read the thread as the SDK does, in
    a copy of the context (the stream's task): the request and what the read returned."""
    wanted = want_early_history(request, user, LIMIT)
    context = contextvars.copy_context()
    return wanted, await asyncio.get_running_loop().create_task(
        store.load_thread(thread_id, user), context=context
    )


@pytest.mark.parametrize("exchanges", [1, 3])
async def test_the_thread_and_its_newest_items_come_in_one_statement(
    store: PostgresStore, any_database: Database, alice: Caller, exchanges: int
) -> None:
    thread_id = await a_thread(store, alice, exchanges)
    direct_thread = await store.load_thread(thread_id, alice)
    direct_page = await store.load_thread_items(thread_id, None, LIMIT, "desc", alice)

    with statements(any_database) as seen:
        wanted, thread = await in_a_turn(store, add_message(thread_id), alice, thread_id)

    assert len(seen) == 1
    assert thread == direct_thread
    page = take_early_history(thread_id, alice)
    assert page is not None
    assert wanted is not None
    assert (await page) == direct_page
    assert direct_page.has_more is (exchanges * 2 > LIMIT)
    assert take_early_history(thread_id, alice) is None  # once


async def test_it_is_only_for_the_same_user_and_thread(
    store: PostgresStore, alice: Caller, bob: Caller
) -> None:
    thread_id = await a_thread(store, alice)
    other_id = await a_thread(store, alice)

    wanted, _ = await in_a_turn(store, add_message(thread_id), alice, other_id)
    assert wanted is not None
    assert not wanted.page.done()  # another thread was read: not filled
    assert take_early_history(thread_id, alice) is None

    with pytest.raises(NotFoundError):
        await in_a_turn(store, add_message(thread_id), bob, thread_id)  # alice's thread
    assert take_early_history(thread_id, bob) is None


async def test_only_a_new_message_wants_it(store: PostgresStore, alice: Caller) -> None:
    create = CHATKIT_REQUEST.validate_python(
        {
            "type": "threads.create",
            "params": {
                "input": {
                    "content": [{"type": "input_text", "text": "hi"}],
                    "attachments": [],
                    "inference_options": {},
                }
            },
        }
    )
    assert want_early_history(create, alice, LIMIT) is None  # type: ignore[arg-type]


async def test_a_missing_thread_fails_the_read_and_leaves_nothing_behind(
    store: PostgresStore, alice: Caller, loop_errors: list[dict[str, Any]]
) -> None:
    with pytest.raises(NotFoundError):
        await in_a_turn(store, add_message("thr_missing"), alice, "thr_missing")
    assert take_early_history("thr_missing", alice) is None
    gc.collect()
    assert loop_errors == []


async def test_a_request_dropped_before_the_read_leaves_a_plain_read(
    store: PostgresStore, alice: Caller
) -> None:
    thread_id = await a_thread(store, alice)
    wanted = want_early_history(add_message(thread_id), alice, LIMIT)
    assert wanted is not None
    wanted.cancel()  # the turn ended before its thread was read

    context = contextvars.copy_context()
    thread = await asyncio.get_running_loop().create_task(
        store.load_thread(thread_id, alice), context=context
    )

    assert thread.id == thread_id
    assert take_early_history(thread_id, alice) is None
