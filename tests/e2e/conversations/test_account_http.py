"""``DELETE /api/me`` and ``GET /api/me/export`` over real HTTP (uvicorn on 127.0.0.1, PostgreSQL).

Alice and Bob each have conversations with items, an attached and an unsent attachment, tasks
and a row of turn limits. Alice's export holds all of hers and nothing of Bob's; her erasure
deletes every row of hers in every user-scoped table (the attachment-bytes hook called first,
with her id only) and touches nothing of Bob's, whose conversations and export stay exactly as
they were. The list of user-scoped tables is checked against the migrated database itself, so a
table someone adds with a ``user_id`` column cannot escape erasure and export.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from chat_app.task_repository import TaskRepository
from chat_app.turn_limits import TurnLimits
from chatkit.types import FileAttachment
from chatkit_backend.auth import build_authenticator
from chatkit_backend.caller import Caller
from chatkit_backend.db import Database, to_sync_url
from chatkit_backend.ids import new_id
from chatkit_backend.settings import Settings
from chatkit_backend.store import PostgresStore
from chatkit_backend.tables import user_tables
from conversations_app.api import create_app
from pydantic import SecretStr
from sqlalchemy import create_engine, inspect, select
from sqlalchemy.pool import NullPool
from starlette.types import ASGIApp

from tests.integration.core.store.store_samples import (
    assistant_message,
    make_thread,
    user_message,
)
from tests.support.servers import UvicornThread
from tests.support.tokens import TEST_JWT_SECRET, auth_header

pytestmark = pytest.mark.postgres_only


class BytesEraser:
    """The attachment storage's hook, recording whose bytes it was asked to delete."""

    def __init__(self) -> None:
        self.users: list[str] = []
        self.fail = False

    async def __call__(self, user_id: str) -> None:
        if self.fail:
            raise OSError("storage unavailable")
        self.users.append(user_id)


@pytest.fixture(scope="module")
def eraser() -> BytesEraser:
    return BytesEraser()


@pytest.fixture(scope="module")
def server(pg_url: str, eraser: BytesEraser) -> Iterator[UvicornThread]:
    settings = Settings(database_url=pg_url, jwt_secret=SecretStr(TEST_JWT_SECRET))

    @asynccontextmanager
    async def app() -> AsyncIterator[ASGIApp]:
        database = Database.from_url(pg_url, settings)
        try:
            yield create_app(
                authenticator=build_authenticator(settings),
                database=database,
                settings=settings,
                erase_user_bytes=eraser,
            )
        finally:
            await database.dispose()

    with UvicornThread(app, lifespan="off", name="account-server") as running:
        yield running


async def seed(database: Database, user: Caller, words: str) -> dict[str, Any]:
    """Two conversations with messages, an attached and an unsent attachment, two tasks."""
    store = PostgresStore(database)
    threads = []
    for index in range(2):
        thread = make_thread(title=f"{words} {index}")
        await store.save_thread(thread, user)
        await store.add_thread_item(thread.id, user_message(thread.id, f"{words} asks"), user)
        await store.add_thread_item(thread.id, assistant_message(thread.id, f"{words} ok"), user)
        threads.append(thread.id)
    for thread_id in (threads[0], None):
        attachment = FileAttachment(
            id=new_id("attachment"), name=f"{words}.pdf", mime_type="application/pdf"
        )
        if thread_id is not None:
            attachment.thread_id = thread_id
        await store.save_attachment(attachment, user)
    tasks = TaskRepository(database)
    await tasks.add(user.user_id, f"{words} task one")
    await tasks.add(user.user_id, f"{words} task two")
    limits = TurnLimits(database, Settings())
    lease = await limits.admit(user)
    if lease is not None:
        lease.tokens = 42
    await limits.finish(lease)
    return {"threads": threads}


async def rows_of(database: Database, user_id: str) -> dict[str, int]:
    counts = {}
    async with database.session() as session:
        for table in user_tables():
            query = select(table.c.user_id).where(table.c.user_id == user_id)
            counts[table.name] = len((await session.execute(query)).all())
    return counts


async def test_export_holds_everything_of_the_caller_and_nothing_else(
    client: httpx.AsyncClient, pg_database: Database, alice: Caller, bob: Caller
) -> None:
    await seed(pg_database, alice, "alice-words")
    await seed(pg_database, bob, "bob-words")
    response = await client.get("/api/me/export", headers=auth_header(alice.user_id))
    assert response.status_code == 200
    export = response.json()
    assert export["user_id"] == alice.user_id
    tables = export["tables"]
    assert set(tables) == {table.name for table in user_tables()}
    assert len(tables["threads"]) == 2
    assert len(tables["thread_items"]) == 4
    assert len(tables["attachments"]) == 2
    assert [row["tokens_today"] for row in tables["user_limits"]] == [42]
    assert sorted(task["title"] for task in tables["tasks"]) == [
        "alice-words task one",
        "alice-words task two",
    ]
    assert {item["content_text"] for item in tables["thread_items"]} == {
        "alice-words asks",
        "alice-words ok",
    }
    assert "bob-words" not in response.text
    assert bob.user_id not in response.text
    assert all(row["user_id"] == alice.user_id for rows in tables.values() for row in rows)


async def test_erase_deletes_everything_of_the_caller_and_nothing_of_the_other(
    client: httpx.AsyncClient,
    pg_database: Database,
    alice: Caller,
    bob: Caller,
    eraser: BytesEraser,
) -> None:
    await seed(pg_database, alice, "alice-words")
    await seed(pg_database, bob, "bob-words")
    bob_export_before = (
        await client.get("/api/me/export", headers=auth_header(bob.user_id))
    ).json()
    bob_rows = await rows_of(pg_database, bob.user_id)

    response = await client.delete("/api/me", headers=auth_header(alice.user_id))
    assert response.status_code == 200
    assert response.json() == {
        "status": "erased",
        "deleted": {
            "thread_items": 4,
            "attachments": 2,
            "user_limits": 1,
            "threads": 2,
            "tasks": 2,
        },
    }
    assert eraser.users[-1] == alice.user_id
    assert bob.user_id not in eraser.users
    assert set((await rows_of(pg_database, alice.user_id)).values()) == {0}

    assert await rows_of(pg_database, bob.user_id) == bob_rows
    bob_export_after = (await client.get("/api/me/export", headers=auth_header(bob.user_id))).json()
    assert bob_export_after["tables"] == bob_export_before["tables"]
    listed = await client.get("/api/conversations", headers=auth_header(bob.user_id))
    assert len(listed.json()["conversations"]) == 2

    again = await client.delete("/api/me", headers=auth_header(alice.user_id))
    assert again.json()["deleted"] == {
        "thread_items": 0,
        "attachments": 0,
        "user_limits": 0,
        "threads": 0,
        "tasks": 0,
    }
    empty = (await client.get("/api/me/export", headers=auth_header(alice.user_id))).json()
    assert all(rows == [] for rows in empty["tables"].values())


async def test_a_failing_bytes_store_leaves_every_row(
    client: httpx.AsyncClient, pg_database: Database, alice: Caller, eraser: BytesEraser
) -> None:
    await seed(pg_database, alice, "alice-words")
    before = await rows_of(pg_database, alice.user_id)
    eraser.fail = True
    try:
        response = await client.delete("/api/me", headers=auth_header(alice.user_id))
    finally:
        eraser.fail = False
    assert response.status_code == 500
    assert response.json() == {"detail": "Internal error"}
    assert await rows_of(pg_database, alice.user_id) == before  # nothing lost: retry works
    assert (await client.delete("/api/me", headers=auth_header(alice.user_id))).status_code == 200


@pytest.mark.parametrize(("method", "path"), [("DELETE", "/api/me"), ("GET", "/api/me/export")])
async def test_account_routes_need_a_token(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    response = await client.request(method, path)
    assert response.status_code == 401
    assert "detail" in response.json()
    forged = await client.request(method, path, headers={"Authorization": "Bearer not-a-token"})
    assert forged.status_code == 401


async def test_hostile_requests_get_a_clear_4xx(
    client: httpx.AsyncClient, pg_database: Database, alice: Caller, bob: Caller
) -> None:
    headers = auth_header(alice.user_id)
    for response in [
        await client.get("/api/me/export?user_id=someone-else%00", headers=headers),
        await client.post("/api/me", headers=headers, json={"user_id": bob.user_id}),
        await client.put("/api/me/export", headers=headers, content=b"\xff\xfe"),
    ]:
        assert 400 <= response.status_code < 500, response.text
        assert "detail" in response.json()


async def test_a_body_naming_another_user_erases_only_the_caller(
    client: httpx.AsyncClient, pg_database: Database, alice: Caller, bob: Caller
) -> None:
    await seed(pg_database, bob, "bob-words")
    bob_rows = await rows_of(pg_database, bob.user_id)
    response = await client.request(
        "DELETE",
        "/api/me",
        headers=auth_header(alice.user_id),
        json={"user_id": bob.user_id, "sub": bob.user_id},
    )
    assert response.status_code == 200
    assert await rows_of(pg_database, bob.user_id) == bob_rows


def test_every_table_with_a_user_id_column_is_covered(pg_url: str) -> None:
    """The migrated database's own tables with ``user_id``: all in :func:`user_tables`."""
    engine = create_engine(to_sync_url(pg_url), poolclass=NullPool)
    try:
        inspector = inspect(engine)
        in_database = {
            name
            for name in inspector.get_table_names()
            if any(column["name"] == "user_id" for column in inspector.get_columns(name))
        }
    finally:
        engine.dispose()
    assert in_database
    assert in_database == {table.name for table in user_tables()}
