"""Writes that must survive a cancellation, with the real driver (psycopg) and real PostgreSQL.

Under anyio cancel scopes (Starlette's own streaming response) a cancelled scope re-raises on
every ``await``; these tests reproduce that and show the shielded writes land and unshielded
ones do not.
"""

from __future__ import annotations

from datetime import datetime

import anyio
import pytest
from chat_app.cancellation import shielded
from chat_app.server import ChatServer
from chatkit.types import (
    AssistantMessageContent,
    AssistantMessageItem,
    ThreadMetadata,
)
from chatkit_backend.caller import Caller
from chatkit_backend.db import Database
from chatkit_backend.settings import Settings
from chatkit_backend.store import PostgresStore
from sqlalchemy import text


async def slow_thread_write(store: PostgresStore, user: Caller, thread_id: str) -> None:
    """A write that is still in flight when the cancellation arrives."""
    async with store.database.session() as session:
        await session.execute(text("SELECT pg_sleep(0.05)"))
    await store.save_thread(ThreadMetadata(id=thread_id, created_at=datetime.now()), user)


async def thread_exists(store: PostgresStore, user: Caller, thread_id: str) -> bool:
    page = await store.load_threads(100, None, "asc", user)
    return thread_id in [thread.id for thread in page.data]


@pytest.mark.parametrize("shield", [True, False])
async def test_only_shielded_writes_survive_a_level_triggered_cancellation(
    pg_database: Database, alice: Caller, shield: bool
) -> None:
    store = PostgresStore(pg_database)
    thread_id = f"thr_cancel_{shield}"

    with anyio.CancelScope() as scope:
        scope.cancel()  # every await inside the scope now raises, again and again
        write = slow_thread_write(store, alice, thread_id)
        await (shielded(write) if shield else write)

    assert scope.cancelled_caught
    assert await thread_exists(store, alice, thread_id) is shield


class NoAgents:
    """The server's agent source is not used by the cancel handler."""

    is_offline = True
    client_tool_names: frozenset[str] = frozenset()
    provider = None

    def open(self, request_context: Caller, options: object = None) -> object:
        raise AssertionError("no agent expected")


async def test_cancel_handler_stores_the_partial_answer_inside_a_cancelled_scope(
    pg_database: Database, alice: Caller
) -> None:
    store = PostgresStore(pg_database)
    server = ChatServer(store, NoAgents(), Settings())
    thread = ThreadMetadata(id="thr_cancel_handler", created_at=datetime.now())
    await store.save_thread(thread, alice)
    partial = AssistantMessageItem(
        id="msg_partial",
        thread_id=thread.id,
        created_at=datetime.now(),
        content=[AssistantMessageContent(text="Half of it")],
    )

    with anyio.CancelScope() as scope:
        scope.cancel()
        await server.handle_stream_cancelled(thread, [partial], alice)

    assert scope.cancelled_caught
    items = (await store.load_thread_items(thread.id, None, 10, "asc", alice)).data
    assert [item.type for item in items] == ["assistant_message", "sdk_hidden_context"]
    assert items[0].content[0].text == "Half of it"  # type: ignore[union-attr]
