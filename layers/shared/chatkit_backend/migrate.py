"""Run Alembic migrations programmatically, serialised by a PostgreSQL advisory lock.

Alembic has no locking of its own: two deploys (or a deploy and a developer) upgrading at once can
both try to create the same table. A *session-level* ``pg_advisory_lock`` on a dedicated
connection serialises them; the second runner waits, then finds the schema current and does
nothing. Run this against the database endpoint, not RDS Proxy (advisory locks pin connections).
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, Connection
from sqlalchemy.pool import NullPool

from .db import to_sync_url
from .settings import PROJECT_ROOT

ADVISORY_LOCK_KEY = 0x63686B6D  # "chkm": any constant shared by every runner of this schema


def migrations_dir() -> Path:
    """Where the Alembic environment lives: ``MIGRATIONS_DIR``, else the checkout's folder."""
    override = os.environ.get("MIGRATIONS_DIR")
    return Path(override) if override else PROJECT_ROOT / "migrations"


def alembic_config(connection: Connection | None = None):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    directory = migrations_dir()
    config = Config(str(directory / "alembic.ini"))
    config.set_main_option("script_location", str(directory))
    config.set_main_option("version_locations", str(directory / "versions"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _run(url: str | URL, action: str, revision: str) -> str | None:
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    engine = create_engine(to_sync_url(url), poolclass=NullPool)
    try:
        with engine.connect() as connection:
            is_postgres = connection.dialect.name == "postgresql"
            if is_postgres:
                connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": ADVISORY_LOCK_KEY})
                connection.commit()
            try:
                config = alembic_config(connection)
                if action == "upgrade":
                    command.upgrade(config, revision)
                else:
                    command.downgrade(config, revision)
                connection.commit()
                return MigrationContext.configure(connection).get_current_revision()
            finally:
                if is_postgres:
                    connection.execute(
                        text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_LOCK_KEY}
                    )
                    connection.commit()
    finally:
        engine.dispose()


def upgrade(url: str | URL, revision: str = "head") -> str | None:
    """Upgrade to ``revision`` under the advisory lock; returns the revision now current."""
    return _run(url, "upgrade", revision)


def downgrade(url: str | URL, revision: str) -> str | None:
    """Downgrade to ``revision`` under the advisory lock; returns the revision now current."""
    return _run(url, "downgrade", revision)
