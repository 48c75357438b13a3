"""The two kinds of database use on one pool: a single statement in autocommit, a transaction in
a session; each connection goes back to the pool as it came (in autocommit).

One pooled connection (pool size 1), so every use below shares it; a second engine watches
from outside what is committed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from chatkit_backend.db import Database
from chatkit_backend.settings import Settings
from sqlalchemy import text

pytestmark = pytest.mark.postgres_only


@pytest.fixture
async def one_connection(pg_url: str) -> AsyncIterator[Database]:
    settings = Settings(database_url=pg_url, db_pool_size=1, db_max_overflow=0)
    database = Database.from_url(pg_url, settings)
    async with database.autocommit() as connection:
        await connection.execute(text("CREATE TABLE session_modes (v int)"))
    yield database
    async with database.autocommit() as connection:
        await connection.execute(text("DROP TABLE session_modes"))
    await database.dispose()


async def rows(database: Database) -> list[int]:
    async with database.autocommit() as connection:
        result = await connection.execute(text("SELECT v FROM session_modes ORDER BY v"))
        return [value for (value,) in result]


async def in_autocommit(database: Database) -> bool:
    async with database.autocommit() as connection:
        raw = await connection.get_raw_connection()
        return bool(raw.driver_connection.autocommit)  # type: ignore[union-attr]


async def failing_session(database: Database, watcher: Database) -> None:
    async with database.session() as session:
        await session.execute(text("INSERT INTO session_modes VALUES (1)"))
        assert await rows(watcher) == []  # not committed yet
        raise LookupError


async def test_a_session_is_one_transaction_and_the_connection_returns_in_autocommit(
    one_connection: Database, pg_database: Database
) -> None:
    with pytest.raises(LookupError):
        await failing_session(one_connection, pg_database)
    assert await rows(pg_database) == []  # rolled back

    async with one_connection.session() as session:
        await session.execute(text("INSERT INTO session_modes VALUES (2)"))
        await session.execute(text("INSERT INTO session_modes VALUES (3)"))
    assert await rows(pg_database) == [2, 3]
    assert await in_autocommit(one_connection)


async def test_an_autocommit_statement_is_committed_on_its_own(
    one_connection: Database, pg_database: Database
) -> None:
    async with one_connection.autocommit() as connection:
        await connection.execute(text("INSERT INTO session_modes VALUES (4)"))
        assert await rows(pg_database) == [4]  # before the block ends: no transaction held
