"""Database engine and sessions, shaped for Lambda.

One engine per process (:func:`get_database`), reused by warm invocations, with a tiny pool (a
sandbox serves one request at a time). A pooled PostgreSQL connection is pinged before reuse only
when it may have died: idle longer than ``DB_PING_AFTER_IDLE_SECONDS`` (a frozen sandbox, a
proxy's idle timeout) or pooled before a SnapStart restore (:meth:`Database.suspect_pooled`),
not on every checkout as ``pool_pre_ping`` would (a round trip each). Behind RDS Proxy /
PgBouncer: ``DB_POOLER`` turns off server-side prepared statements, ``DB_NULL_POOL`` leaves
pooling to the proxy. Sessions are short: one per store call, never held while a model streams;
a single statement runs in :meth:`Database.autocommit` (no ``BEGIN``/``COMMIT`` round trips).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import event, exc
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
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
    postgres = url.get_backend_name() == "postgresql"
    kwargs: dict[str, Any] = {"pool_pre_ping": not postgres, "hide_parameters": True}
    if postgres:
        # Connections start in autocommit, the mode of nearly every statement (see Database).
        kwargs["isolation_level"] = "AUTOCOMMIT"
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
    if postgres and not settings.db_null_pool:
        PingWhenIdle(settings.db_ping_after_idle_seconds).install(engine)
    if url.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


_CHECKERS: WeakKeyDictionary[Any, PingWhenIdle] = WeakKeyDictionary()
"""Each engine's :class:`PingWhenIdle` (engines have no room for it)."""

LAST_CHECKIN = "ckb_last_checkin"
"""``connection_record.info`` key: when the connection went back to the pool (monotonic)."""


class PingWhenIdle:
    """The pool's liveness check, only for connections that may have died.

    At checkout a connection returned more than ``idle_seconds`` ago, or before
    :meth:`suspect_all`, gets a ``SELECT 1``; if that fails the pool replaces it
    (``DisconnectionError``) before anything of the caller's is sent. A new connection and one
    reused at once go unchecked. ``info`` belongs to the DBAPI connection, so a replaced
    connection starts without a checkin time.
    """

    def __init__(self, idle_seconds: float) -> None:
        self.idle_seconds = idle_seconds
        self.suspect_before = 0.0

    def install(self, engine: AsyncEngine) -> None:
        event.listen(engine.sync_engine, "checkin", self._checkin)
        event.listen(engine.sync_engine, "checkout", self._checkout)
        _CHECKERS[engine.sync_engine] = self

    def suspect_all(self) -> None:
        """Check every connection pooled until now at its next checkout (after a restore)."""
        self.suspect_before = time.monotonic()

    def _checkin(self, _dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info[LAST_CHECKIN] = time.monotonic()

    def _checkout(self, dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        returned = record.info.get(LAST_CHECKIN)
        if returned is None:
            return
        if time.monotonic() - returned <= self.idle_seconds and returned > self.suspect_before:
            return
        try:
            _select_one(dbapi_connection)
        except Exception as error:
            raise exc.DisconnectionError("pooled connection failed its check") from error


def _select_one(dbapi_connection: Any) -> None:
    """``SELECT 1`` in autocommit, so the connection is handed out idle, not in a transaction
    (a session in :meth:`Database.autocommit` could not switch it otherwise)."""
    autocommit = dbapi_connection.autocommit
    dbapi_connection.autocommit = True
    try:
        cursor = dbapi_connection.cursor()
        cursor.execute("SELECT 1")
        cursor.close()
    finally:
        dbapi_connection.autocommit = autocommit


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
    """An engine plus its session factory: the one object the store and services depend on.

    On PostgreSQL the engine is :func:`create_engine`'s, whose connections are in autocommit:
    :meth:`autocommit` uses them as they are, and a :meth:`session` switches its connection to
    ``READ COMMITTED`` for the transaction and back. Most statements are single ones, so the
    switch (and its reset when the connection goes back to the pool) is paid by the few
    transactions, not by every statement.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._autocommits = engine.dialect.name == "postgresql"
        transactional = (
            engine.execution_options(isolation_level="READ COMMITTED")
            if self._autocommits
            else engine
        )
        self._sessions = async_sessionmaker(transactional, expire_on_commit=False)

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

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[AsyncConnection]:
        """A connection for one statement (a read, or one atomic write): on PostgreSQL each
        statement commits on its own, so no ``BEGIN`` and ``COMMIT`` round trips; elsewhere in a
        transaction like :meth:`session`. A Core connection, not an ORM session: its statements
        are Core statements, and a session's bookkeeping would cost more than the statement.
        Never for several writes that must stand together."""
        if not self._autocommits:
            async with self.engine.begin() as connection:
                yield connection
            return
        async with self.engine.connect() as connection:
            yield connection

    def suspect_pooled(self) -> None:
        """Check each pooled connection before its next use (after a SnapStart restore)."""
        checker = _CHECKERS.get(self.engine.sync_engine)
        if checker is not None:
            checker.suspect_all()

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
