"""A new message's history read early: the same page, for that user's thread only, once, and
nothing left behind when nobody takes it or the read fails."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest
from chat_app.early_history import EarlyHistory, start_early_history, take_early_history
from chat_app.service import CHATKIT_REQUEST
from chatkit.types import StreamingReq
from chatkit_backend.caller import Caller
from chatkit_backend.db import Database
from chatkit_backend.settings import Settings
from chatkit_backend.store import ADMISSION, PostgresStore

from tests.integration.core.store.store_samples import (
    assistant_message,
    saved_thread,
    user_message,
)

LIMIT = 59


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


async def a_thread(store: PostgresStore, user: Caller) -> str:
    thread = await saved_thread(store, user)
    for item in (user_message(thread.id, "one"), assistant_message(thread.id, "Re: one")):
        await store.add_thread_item(thread.id, item, user)
    return thread.id


async def test_the_early_page_is_the_threads_newest_items(
    store: PostgresStore, alice: Caller
) -> None:
    thread_id = await a_thread(store, alice)
    direct = await store.load_thread_items(thread_id, None, LIMIT, "desc", alice)

    early = start_early_history(store, add_message(thread_id), alice, LIMIT)
    assert early is not None
    taken = take_early_history(thread_id, alice)

    assert taken is early.read
    assert (await taken) == direct
    assert take_early_history(thread_id, alice) is None  # once


async def test_it_is_only_for_the_same_user_and_thread(
    store: PostgresStore, alice: Caller, bob: Caller
) -> None:
    thread_id = await a_thread(store, alice)
    other_id = await a_thread(store, alice)

    bobs = start_early_history(store, add_message(thread_id), bob, LIMIT)
    assert bobs is not None
    assert take_early_history(thread_id, alice) is None
    assert take_early_history(other_id, bob) is None
    assert (await bobs.read).data == []  # bob's read of alice's thread is his: empty

    start_early_history(store, add_message(thread_id), alice, LIMIT)
    assert take_early_history(other_id, alice) is None


async def test_only_a_new_message_reads_early(store: PostgresStore, alice: Caller) -> None:
    thread_id = await a_thread(store, alice)
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
    assert start_early_history(store, create, alice, LIMIT) is None  # type: ignore[arg-type]
    assert take_early_history(thread_id, alice) is None


async def test_a_cancelled_read_leaves_nothing_behind(
    store: PostgresStore, alice: Caller, loop_errors: list[dict[str, Any]]
) -> None:
    thread_id = await a_thread(store, alice)
    early = start_early_history(store, add_message(thread_id), alice, LIMIT)
    assert early is not None

    early.cancel()
    await asyncio.sleep(0.05)

    assert early.read.cancelled()
    assert loop_errors == []
    later = await store.load_thread_items(thread_id, None, LIMIT, "desc", alice)
    assert len(later.data) == 2  # the pool is fine after the cancelled read


async def test_a_failed_read_nobody_took_is_not_an_unretrieved_error(
    alice: Caller, loop_errors: list[dict[str, Any]]
) -> None:
    unreachable = "postgresql+psycopg://nobody@127.0.0.1:9/none"
    store = PostgresStore(Database.from_url(unreachable, Settings(database_url=unreachable)))
    early = start_early_history(store, add_message("thr_x"), alice, LIMIT)
    assert early is not None

    await asyncio.wait([early.read], timeout=30)
    assert early.read.done()
    assert not early.read.cancelled()
    del early
    take_early_history("thr_x", alice)  # the context's reference goes too: nobody took it
    gc.collect()

    assert loop_errors == []


def started_after(
    admission: asyncio.Future[None], store: PostgresStore, request: StreamingReq, user: Caller
) -> EarlyHistory | None:
    """The early read started as the chat service starts it: in the turn's admission context."""
    token = ADMISSION.set(admission)
    try:
        return start_early_history(store, request, user, LIMIT)
    finally:
        ADMISSION.reset(token)


async def test_the_read_waits_for_the_admission_and_a_refused_turn_reads_nothing(
    store: PostgresStore, alice: Caller, monkeypatch: pytest.MonkeyPatch
) -> None:
    thread_id = await a_thread(store, alice)
    direct = await store.load_thread_items(thread_id, None, LIMIT, "desc", alice)
    reads: list[str] = []
    load = PostgresStore.load_thread_items

    async def counted(self: PostgresStore, *args: Any, **kwargs: Any) -> Any:
        reads.append(args[0])
        return await load(self, *args, **kwargs)

    monkeypatch.setattr(PostgresStore, "load_thread_items", counted)
    loop = asyncio.get_running_loop()
    admission: asyncio.Future[None] = loop.create_future()
    early = started_after(admission, store, add_message(thread_id), alice)
    assert early is not None
    await asyncio.sleep(0.01)  # room for a read that must wait
    assert reads == []
    admission.set_result(None)
    assert (await early.read) == direct
    assert reads == [thread_id]

    refused: asyncio.Future[None] = loop.create_future()
    early = started_after(refused, store, add_message(thread_id), alice)
    assert early is not None
    refused.set_exception(LookupError("refused"))
    with pytest.raises(LookupError):
        await early.read
    assert reads == [thread_id]
