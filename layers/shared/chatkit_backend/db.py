"""Database engine and sessions, shaped for Lambda.

One engine per process (:func:`get_database`), reused by warm invocations, with a tiny pool (a
sandbox serves one request at a time) and ``pool_pre_ping`` (connections die while a sandbox is
frozen). Behind RDS Proxy / PgBouncer: ``DB_POOLER`` turns off server-side prepared statements,
``DB_NULL_POOL`` leaves pooling to the proxy. Sessions are short: one per store call, never held
while a model streams.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool

from .settings import Settings, get_settings


def resolve_database_url(settings: Settings) -> URL:
    """The URL to use: ``DATABASE_URL``, else the Secrets Manager secret, else embedded SQLite.

    Deployed functions always have one of the first two (the template sets the secret ARN); the
    embedded fallback exists for the local dev server and the SQLite store tests.
    """
    if settings.database_url:
        return to_async_url(settings.database_url)
    if settings.database_secret_arn:
        from .secrets import database_url_from_secret

        return to_async_url(database_url_from_secret(settings.database_secret_arn))
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return make_url(settings.sqlite_url)


ASYNC_DRIVERS = {"postgresql": "postgresql+psycopg", "sqlite": "sqlite+aiosqlite"}
SYNC_DRIVERS = {"postgresql": "postgresql+psycopg", "sqlite": "sqlite"}
"""psycopg 3 serves both modes for PostgreSQL; SQLite needs aiosqlite for async."""


def to_async_url(url: str | URL) -> URL:
    """Map driver-less or sync URLs onto the async drivers this package uses."""
    return _with_driver(url, ASYNC_DRIVERS)


def to_sync_url(url: str | URL) -> URL:
    """The same database through a synchronous driver (Alembic runs synchronously)."""
    return _with_driver(url, SYNC_DRIVERS)


def _with_driver(url: str | URL, drivers: dict[str, str]) -> URL:
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend not in drivers:
        raise ValueError(f"unsupported database backend: {backend}")
    return parsed.set(drivername=drivers[backend])


def create_engine(url: str | URL, settings: Settings | None = None) -> AsyncEngine:
    """An async engine configured for the given database and the process settings."""
    settings = settings or get_settings()
    url = to_async_url(url)
    # hide_parameters: a database error's text never carries the bound values (message content)
    # into a log line or a traceback.
    kwargs: dict[str, Any] = {"pool_pre_ping": True, "hide_parameters": True}
    if url.get_backend_name() == "postgresql":
        connect_args: dict[str, Any] = {"connect_timeout": 10, **tls_connect_args(settings)}
        if settings.db_pooler:
            connect_args["prepare_threshold"] = None
        kwargs["connect_args"] = connect_args
        if settings.db_null_pool:
            kwargs["poolclass"] = NullPool
        else:
            kwargs["pool_size"] = settings.db_pool_size
            kwargs["max_overflow"] = settings.db_max_overflow
            kwargs["pool_recycle"] = 300
    engine = create_async_engine(url, **kwargs)
    if url.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def tls_connect_args(settings: Settings | None = None) -> dict[str, str]:
    """libpq's ``sslmode`` / ``sslrootcert`` from ``DATABASE_SSLMODE`` / ``DATABASE_SSLROOTCERT``.

    The template sets ``require`` for every deployed function (encrypted, server not verified);
    ``verify-full`` with the RDS CA bundle also checks the server's name and certificate.
    """
    settings = settings or get_settings()
    args: dict[str, str] = {}
    if settings.database_sslmode is not None:
        args["sslmode"] = settings.database_sslmode
    if settings.database_sslrootcert is not None:
        args["sslrootcert"] = settings.database_sslrootcert
    return args


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """Foreign keys (for ON DELETE CASCADE) and WAL (readers do not block the writer)."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


class Database:
    """An engine plus its session factory: the one object the store and services depend on."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def from_url(cls, url: str | URL, settings: Settings | None = None) -> Database:
        return cls(create_engine(url, settings))

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction: committed on success, rolled back on error."""
        async with self._sessions() as session, session.begin():
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()


_database: Database | None = None


def get_database() -> Database:
    """The process-wide database (created on first use, then reused by warm invocations)."""
    global _database
    if _database is None:
        settings = get_settings()
        _database = Database.from_url(resolve_database_url(settings), settings)
        if settings.database_secret_arn and not settings.database_url:
            from .rotation import follow_secret_rotation

            follow_secret_rotation(_database.engine, settings.database_secret_arn)
    return _database


def set_database(database: Database | None) -> None:
    """Replace the process-wide database (tests, the dev server)."""
    global _database
    _database = database
