"""The retention sweep deletes exactly what is past retention, on PostgreSQL and SQLite.

Each test gets a database of its own (the sweep acts for nobody: on the shared test database
it would delete other tests' rows). Conversations are written through the ChatKit store, then
their ``updated_at`` is moved into the past; the sweep runs through the function's handler
with ``RETENTION_DAYS`` from the environment, as deployed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import migration_runner
import pytest
import retention
import retention_handler
from chat_app.task_repository import TaskRepository
from chatkit.types import FileAttachment, ThreadMetadata
from chatkit_backend.caller import Caller
from chatkit_backend.db import Database
from chatkit_backend.ids import new_id
from chatkit_backend.settings import Settings, get_settings
from chatkit_backend.store import PostgresStore
from chatkit_backend.tables import ATTACHMENTS, ITEMS, TASKS, THREADS, UTCDateTime, utcnow
from sqlalchemy import Column, Integer, MetaData, Table, func, select, update

from tests.integration.core.store.store_samples import user_message
from tests.support.databases import scratch_database

DAYS = 30


@pytest.fixture(params=["postgresql", "sqlite"])
def database_url(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'retention.db'}"
        migration_runner.upgrade(url)
        yield url
        return
    with scratch_database("ckb_retention") as url:
        migration_runner.upgrade(url)
        yield url


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    database = Database.from_url(database_url)
    yield database
    await database.dispose()


@pytest.fixture
def configured(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The function's environment: this database and ``RETENTION_DAYS``."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("RETENTION_DAYS", str(DAYS))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


async def conversation(
    database: Database, user: Caller, *, idle_days: float, attachments: int = 0
) -> str:
    """A conversation with a message (and attachments) last updated ``idle_days`` ago."""
    store = PostgresStore(database)
    thread = ThreadMetadata(id=new_id("thread"), created_at=utcnow())
    await store.save_thread(thread, user)
    await store.add_thread_item(thread.id, user_message(thread.id, "hello"), user)
    for _ in range(attachments):
        await store.save_attachment(
            FileAttachment(
                id=new_id("attachment"),
                name="a.pdf",
                mime_type="application/pdf",
                thread_id=thread.id,
            ),
            user,
        )
    async with database.session() as session:
        await session.execute(
            update(THREADS)
            .where(THREADS.c.id == thread.id)
            .values(updated_at=utcnow() - timedelta(days=idle_days))
        )
    return thread.id


async def unsent_attachment(database: Database, user: Caller, *, age_hours: float) -> str:
    attachment_id = new_id("attachment")
    await PostgresStore(database).save_attachment(
        FileAttachment(id=attachment_id, name="u.png", mime_type="image/png"), user
    )
    async with database.session() as session:
        await session.execute(
            update(ATTACHMENTS)
            .where(ATTACHMENTS.c.id == attachment_id)
            .values(created_at=utcnow() - timedelta(hours=age_hours))
        )
    return attachment_id


async def ids(database: Database, table: Table) -> set[str]:
    async with database.session() as session:
        return set((await session.execute(select(table.c.id))).scalars())


async def test_the_sweep_deletes_exactly_what_is_past_retention(
    database: Database, configured: None
) -> None:
    alice, bob = Caller(user_id="alice"), Caller(user_id="bob")
    old_alice = await conversation(database, alice, idle_days=DAYS + 1, attachments=2)
    old_bob = await conversation(database, bob, idle_days=DAYS + 5)
    kept = {
        await conversation(database, alice, idle_days=DAYS - 1, attachments=1),
        await conversation(database, bob, idle_days=0),
    }
    abandoned = await unsent_attachment(database, alice, age_hours=25)
    pending = await unsent_attachment(database, bob, age_hours=1)
    await TaskRepository(database).add("alice", "a task outlives conversations")

    report = await retention_handler.run_sweep(get_settings())

    assert report == {"conversations": 2, "unsent_attachments": 1, "expired": {}}
    assert await ids(database, THREADS) == kept
    async with database.session() as session:
        item_threads = set((await session.execute(select(ITEMS.c.thread_id))).scalars())
        attached = set(
            (
                await session.execute(
                    select(ATTACHMENTS.c.thread_id).where(ATTACHMENTS.c.thread_id.is_not(None))
                )
            ).scalars()
        )
        tasks = (await session.execute(select(func.count()).select_from(TASKS))).scalar()
    assert item_threads == kept
    assert old_alice not in attached
    assert attached <= kept
    remaining_attachments = await ids(database, ATTACHMENTS)
    assert abandoned not in remaining_attachments
    assert pending in remaining_attachments
    assert tasks == 1
    assert old_bob not in await ids(database, THREADS)

    again = await retention_handler.run_sweep(get_settings())
    assert again == {"conversations": 0, "unsent_attachments": 0, "expired": {}}


async def test_without_retention_days_only_leftovers_go(
    database: Database, configured: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RETENTION_DAYS")
    get_settings.cache_clear()
    user = Caller(user_id="keeper")
    ancient = await conversation(database, user, idle_days=3650)
    abandoned = await unsent_attachment(database, user, age_hours=48)
    report = await retention_handler.run_sweep(get_settings())
    assert report["conversations"] == 0
    assert report["unsent_attachments"] == 1
    assert await ids(database, THREADS) == {ancient}
    assert abandoned not in await ids(database, ATTACHMENTS)


async def test_the_bytes_hook_runs_first_for_exactly_the_deleted_attachments(
    database: Database,
) -> None:
    user = Caller(user_id="bytes")
    old = await conversation(database, user, idle_days=DAYS + 1, attachments=2)
    await conversation(database, user, idle_days=1, attachments=1)
    abandoned = await unsent_attachment(database, user, age_hours=30)
    async with database.session() as session:
        old_attachments = set(
            (
                await session.execute(
                    select(ATTACHMENTS.c.id).where(ATTACHMENTS.c.thread_id == old)
                )
            ).scalars()
        )
    asked: list[tuple[str, str]] = []

    async def delete_bytes(refs: Any) -> None:
        assert await ids(database, ATTACHMENTS) >= {ref[1] for ref in refs}  # rows still there
        asked.extend(refs)

    await retention.sweep(database, DAYS, delete_attachment_bytes=delete_bytes)
    assert {attachment for _, attachment in asked} == {*old_attachments, abandoned}
    assert {owner for owner, _ in asked} == {"bytes"}


async def test_a_failing_bytes_hook_leaves_the_rows_for_the_next_sweep(database: Database) -> None:
    user = Caller(user_id="retry")
    old = await conversation(database, user, idle_days=DAYS + 1, attachments=1)

    async def broken(refs: Any) -> None:
        raise OSError("storage unavailable")

    with pytest.raises(OSError, match="storage unavailable"):
        await retention.sweep(database, DAYS, delete_attachment_bytes=broken)
    assert old in await ids(database, THREADS)
    report = await retention.sweep(database, DAYS)
    assert report.conversations == 1


async def test_rows_past_expires_at_are_swept(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Any table with an ``expires_at`` column (a lease, a limit window) is swept."""
    leases = Table(
        "test_leases",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("expires_at", UTCDateTime, nullable=False),
    )
    async with database.engine.begin() as connection:
        await connection.run_sync(leases.create)
        now = utcnow()
        await connection.execute(
            leases.insert(),
            [
                {"id": 1, "expires_at": now - timedelta(seconds=1)},
                {"id": 2, "expires_at": now + timedelta(hours=1)},
            ],
        )
    monkeypatch.setattr(retention, "expiring_tables", lambda: [leases])
    monkeypatch.setattr(retention, "BATCH_SIZE", 1)  # and the batches loop
    report = await retention.sweep(database, None, now=now)
    assert report.expired == {"test_leases": 1}
    async with database.session() as session:
        left = set((await session.execute(select(leases.c.id))).scalars())
    assert left == {2}


def test_settings_refuse_a_zero_or_negative_retention() -> None:
    with pytest.raises(ValueError, match="retention_days"):
        Settings(retention_days=0)
