"""A pooled connection is checked before reuse only when it may have died, and then replaced.

The server side of a pooled connection is terminated (``pg_terminate_backend``, what a proxy's
idle timeout or a failover does) while it sits in the pool. Checked (idle past the threshold, or
pooled before a SnapStart restore), the next use gets a fresh connection; unchecked, the dead
one is handed out, which is why the check exists.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from chatkit_backend.db import Database
from chatkit_backend.settings import Settings
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

DatabaseFactory = Callable[[float], Database]


@pytest.fixture
async def make_database(pg_url: str) -> AsyncIterator[DatabaseFactory]:
    made: list[Database] = []

    def make(idle_seconds: float) -> Database:
        settings = Settings(database_url=pg_url, db_ping_after_idle_seconds=idle_seconds)
        database = Database.from_url(pg_url, settings)
        made.append(database)
        return database

    yield make
    for database in made:
        await database.dispose()


async def pooled_backend_killed(database: Database, admin: Database) -> None:
    """Use one connection, return it to the pool, then terminate its server process."""
    async with database.autocommit() as session:
        pid = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
    async with admin.autocommit() as session:
        await session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})


async def answer(database: Database) -> int:
    async with database.autocommit() as session:
        return int((await session.execute(text("SELECT 41 + 1"))).scalar_one())


async def test_an_idle_connection_is_checked_and_replaced(
    make_database: DatabaseFactory, pg_database: Database
) -> None:
    database = make_database(0.0)  # every pooled connection counts as idle
    await pooled_backend_killed(database, pg_database)
    assert await answer(database) == 42


async def test_a_checked_live_connection_serves_both_kinds_of_session(
    make_database: DatabaseFactory,
) -> None:
    database = make_database(0.0)
    assert await answer(database) == 42
    assert await answer(database) == 42  # checked first, then used in autocommit
    async with database.session() as session:  # checked, then used in a transaction
        assert (await session.execute(text("SELECT 42"))).scalar_one() == 42


async def test_connections_pooled_before_a_restore_are_checked(
    make_database: DatabaseFactory, pg_database: Database
) -> None:
    database = make_database(3600.0)
    await pooled_backend_killed(database, pg_database)
    database.suspect_pooled()
    assert await answer(database) == 42


async def test_a_recently_used_connection_is_not_checked(
    make_database: DatabaseFactory, pg_database: Database
) -> None:
    database = make_database(3600.0)
    await pooled_backend_killed(database, pg_database)
    with pytest.raises(DBAPIError):
        await answer(database)
    assert await answer(database) == 42  # the pool dropped the dead connection meanwhile
