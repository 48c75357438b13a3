"""Shared fixtures: a PostgreSQL database of this run's own, migrated with the real Alembic scripts.

``TEST_DATABASE_URL`` names a server and a maintenance database (default: the local server at
127.0.0.1:5432, database ``postgres``). Each run creates ``ckb_test_<random>`` there, runs the
migrations, and drops it at the end, so concurrent runs never see each other's rows. Inside a run,
tests isolate themselves by user: every test gets fresh random user ids, and every query is
user-scoped, which is the property under test anyway.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable, Iterator

import migration_runner
import pytest
from chatkit_backend.caller import Caller
from chatkit_backend.db import Database

from tests.support.databases import create_scratch_database, drop_scratch_database

__all__ = ["create_scratch_database", "drop_scratch_database"]  # where older imports look


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """URL of this run's migrated PostgreSQL database."""
    url = create_scratch_database()
    migration_runner.upgrade(url)
    yield url
    drop_scratch_database(url)


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """URL of this run's migrated embedded (SQLite) database."""
    url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'chat.db'}"
    migration_runner.upgrade(url)
    return url


@pytest.fixture(scope="session")
async def pg_database(pg_url: str) -> AsyncIterator[Database]:
    database = Database.from_url(pg_url)
    yield database
    await database.dispose()


@pytest.fixture(scope="session")
async def sqlite_database(sqlite_url: str) -> AsyncIterator[Database]:
    database = Database.from_url(sqlite_url)
    yield database
    await database.dispose()


@pytest.fixture(params=["postgresql", "sqlite"])
def any_database(request: pytest.FixtureRequest) -> Database:
    """The store suite runs on both backends; everything else uses ``pg_database``."""
    return request.getfixturevalue(
        f"{'pg' if request.param == 'postgresql' else 'sqlite'}_database"
    )


@pytest.fixture
def new_user() -> Callable[[], Caller]:
    """Factory of request contexts for fresh, unique users."""

    def make() -> Caller:
        return Caller(user_id=f"user_{secrets.token_hex(8)}")

    return make


@pytest.fixture
def alice(new_user: Callable[[], Caller]) -> Caller:
    return new_user()


@pytest.fixture
def bob(new_user: Callable[[], Caller]) -> Caller:
    return new_user()
