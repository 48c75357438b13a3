"""Alembic environment: runs synchronously on the connection or URL the caller provides.

``migration_runner`` passes an open connection (holding the advisory lock) through
``config.attributes["connection"]``; the plain ``alembic`` CLI falls back to ``DATABASE_URL``.
The environment may import the shared layer's models (autogenerate compares against them); the
revision scripts in ``versions/`` must not import application code, so that an old revision
keeps meaning what it meant when it was written.
"""

from __future__ import annotations

import os
from logging.config import fileConfig

from alembic import context
from chatkit_backend.db import to_sync_url
from chatkit_backend.tables import metadata
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

config = context.config


def _configure_and_run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        compare_type=True,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure_and_run(connection)
        return
    # The CLI: its logging comes from alembic.ini (programmatic callers keep their own logging).
    if config.config_file_name:
        fileConfig(config.config_file_name, disable_existing_loggers=False)
    url = config.get_main_option("sqlalchemy.url") or os.environ.get("DATABASE_URL")
    if not url:
        raise RuntimeError("set DATABASE_URL (or pass a connection) to run migrations")
    engine = create_engine(to_sync_url(url), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            _configure_and_run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("offline (--sql) migrations are not supported; run against a database")
run_migrations_online()
