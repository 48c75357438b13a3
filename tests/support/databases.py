"""Scratch databases next to ``TEST_DATABASE_URL``'s, for tests that need a database of their own.

``TEST_DATABASE_URL`` names a server and a maintenance database (default: the local server at
127.0.0.1:5432, database ``postgres``). Migration tests need empty databases (the session's
shared one is already at head), and the concurrency tests need databases other processes reach.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

from chatkit_backend.db import to_sync_url
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

DEFAULT_TEST_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def admin_url() -> str:
    return os.environ.get("TEST_DATABASE_URL", DEFAULT_TEST_DATABASE_URL)


def create_scratch_database(prefix: str = "ckb_test") -> str:
    """Create an empty database next to TEST_DATABASE_URL's; return its (sync) URL."""
    admin = to_sync_url(admin_url())
    name = f"{prefix}_{secrets.token_hex(6)}"
    engine = create_engine(admin, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return admin.set(database=name).render_as_string(hide_password=False)


def drop_scratch_database(url: str) -> None:
    parsed = make_url(url)
    admin = to_sync_url(admin_url())
    engine = create_engine(admin, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
    engine.dispose()


@contextmanager
def scratch_database(prefix: str = "ckb_test") -> Iterator[str]:
    """An empty scratch database for the duration of the block."""
    url = create_scratch_database(prefix)
    try:
        yield url
    finally:
        drop_scratch_database(url)


def schema_revision(url: str) -> str | None:
    """The Alembic revision a database is at, read directly (None before the first migration).

    An oracle independent of the migration runner under test.
    """
    engine = create_engine(to_sync_url(url), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return None
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        engine.dispose()


def table_names(url: str) -> set[str]:
    engine = create_engine(to_sync_url(url), poolclass=NullPool)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
