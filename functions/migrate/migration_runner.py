"""Run Alembic migrations programmatically, serialised by a PostgreSQL advisory lock.

Alembic has no locking of its own: two deploys (or a deploy and a developer) upgrading at once can
both try to create the same table. A *session-level* ``pg_advisory_lock`` on a dedicated
connection serialises them; the second runner waits, then finds the schema current and does
nothing. Session-level (not transaction-level) because the lock must outlive the commit of the
migration transaction and be released even when that transaction fails; closing the connection
releases it too, so a runner killed mid-way (Lambda timeout) never leaves it held. Run this
against the database endpoint, not RDS Proxy (advisory locks pin proxy connections).

On PostgreSQL the whole upgrade runs in one transaction (transactional DDL): a failing revision
leaves the schema exactly as it was.

The app role (revision ``0005_app_role``: data rights, no DDL) gets its password here, after each
deployed upgrade, from ``APP_DATABASE_SECRET_ARN`` (:func:`sync_app_role`): the app secret
rotates on its own schedule, so every deploy re-applies its current value. The password is sent
as a SCRAM verifier computed by libpq, never as clear text in a statement.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Literal

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from chatkit_backend.db import tls_connect_args, to_sync_url
from chatkit_backend.errors import ConfigurationError
from chatkit_backend.secrets import database_url_from_secret, get_json_secret
from chatkit_backend.settings import PROJECT_ROOT, Settings
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.pool import NullPool

logger = logging.getLogger(__name__)

APP_ROLE = "chatkit_app"
"""The role revision ``0005_app_role`` creates (that revision keeps its own copy of the name)."""
ADVISORY_LOCK_KEY = 0x63686B6D  # "chkm": any constant shared by every runner of this schema
CONNECT_TIMEOUT_SECONDS = 10
"""Fail fast on an unreachable database instead of spending the migration function's timeout."""


class DatabaseUnreachable(RuntimeError):
    """The migration runner could not open its connection (network, credentials, database name)."""


def migrations_dir(default: Path | None = None) -> Path:
    """Where the Alembic environment lives.

    ``MIGRATIONS_DIR`` wins (operators, tests with extra revisions); then ``default``, which the
    migration function passes as the copy bundled next to its entry module; then the checkout's
    top-level ``migrations/`` folder (tests, the dev server, the ``alembic`` CLI).
    """
    override = os.environ.get("MIGRATIONS_DIR")
    if override:
        return Path(override)
    return default if default is not None else PROJECT_ROOT / "migrations"


def alembic_config(
    connection: Connection | None = None, *, directory: Path | None = None
) -> Config:
    """An Alembic ``Config`` for ``directory`` (default :func:`migrations_dir`).

    With ``connection``, env.py runs on it instead of opening its own (so the runner's lock and
    the migration share one session).
    """
    directory = directory or migrations_dir()
    config = Config(str(directory / "alembic.ini"))
    config.set_main_option("script_location", str(directory))
    config.set_main_option("version_locations", str(directory / "versions"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade(
    url: str | URL,
    revision: str = "head",
    *,
    directory: Path | None = None,
    allow_newer_schema: bool = False,
) -> str | None:
    """Upgrade to ``revision`` under the advisory lock; returns the revision now current.

    ``allow_newer_schema``: when the database is at a revision these scripts do not know (newer
    code migrated it, and this is a rollback to older code), leave it alone and return that
    revision instead of failing. Schemas are evolved expand-then-contract, so older code runs on
    a newer schema; a failure here would only wedge a CloudFormation rollback.
    """
    return _run(url, "upgrade", revision, directory, allow_newer_schema=allow_newer_schema)


def downgrade(url: str | URL, revision: str, *, directory: Path | None = None) -> str | None:
    """Downgrade to ``revision`` under the advisory lock; returns the revision now current."""
    return _run(url, "downgrade", revision, directory, allow_newer_schema=False)


def deployed_database_url(settings: Settings, *, force_fetch: bool = False) -> str:
    """The migration job's database: ``DATABASE_URL``, else the Secrets Manager secret.

    Unlike the app functions there is no embedded fallback: migrating a throwaway SQLite file
    in a Lambda sandbox would report success while the real database stays behind.
    """
    if settings.database_url:
        return settings.database_url
    if settings.database_secret_arn:
        return database_url_from_secret(settings.database_secret_arn, force_fetch=force_fetch)
    raise ConfigurationError("set DATABASE_SECRET_ARN (or DATABASE_URL) for the migration job")


def upgrade_deployed(settings: Settings, *, directory: Path | None = None) -> str:
    """The migration job: upgrade the configured database to head; returns the revision.

    Credentials from the secret are cached per sandbox; when the connection fails with cached
    ones (a rotation since they were read) they are fetched afresh and the upgrade tried once more.
    """
    try:
        revision = upgrade(
            deployed_database_url(settings), directory=directory, allow_newer_schema=True
        )
    except DatabaseUnreachable:
        if settings.database_url or not settings.database_secret_arn:
            raise
        logger.warning("database connection failed; retrying with freshly read credentials")
        revision = upgrade(
            deployed_database_url(settings, force_fetch=True),
            directory=directory,
            allow_newer_schema=True,
        )
    if revision is None:
        raise RuntimeError("the migrations define no revision")
    if settings.app_database_secret_arn:
        sync_app_role(deployed_database_url(settings), settings.app_database_secret_arn)
    return revision


def sync_app_role(url: str | URL, secret_arn: str) -> None:
    """Let the app role log in with the app secret's current password (PostgreSQL only).

    The secret's ``username`` must be :data:`APP_ROLE`: a secret naming the owner (or anyone
    else) would hand the app functions rights the app role does not have.
    """
    sync_url = to_sync_url(url)
    if sync_url.get_backend_name() != "postgresql":
        return
    secret = get_json_secret(secret_arn)
    username, password = secret.get("username"), secret.get("password")
    if username != APP_ROLE or not isinstance(password, str) or not password:
        raise ConfigurationError(
            f"the app database secret must hold username {APP_ROLE!r} and a password"
        )
    engine = _job_engine(sync_url)
    try:
        with engine.connect() as connection:
            driver = connection.connection.driver_connection
            verifier = driver.pgconn.encrypt_password(  # type: ignore[union-attr]
                password.encode(), APP_ROLE.encode(), b"scram-sha-256"
            ).decode()
            connection.exec_driver_sql(f"ALTER ROLE {APP_ROLE} WITH LOGIN PASSWORD '{verifier}'")
            connection.commit()
    except SQLAlchemyError as exc:
        detail = exc.orig if isinstance(exc, DBAPIError) and exc.orig else exc
        raise RuntimeError(
            f"could not set the app role's password: {type(detail).__name__}"
        ) from None
    finally:
        engine.dispose()


def current_revision(url: str | URL) -> str | None:
    """The database's current revision (None before the first migration); reads, never writes."""
    engine = _job_engine(to_sync_url(url))
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def current_revision_deployed(settings: Settings) -> str | None:
    """:func:`current_revision` of the migration job's database."""
    return current_revision(deployed_database_url(settings))


def _run(
    url: str | URL,
    action: Literal["upgrade", "downgrade"],
    revision: str,
    directory: Path | None,
    *,
    allow_newer_schema: bool,
) -> str | None:
    """Open a dedicated connection, take the lock on PostgreSQL, migrate, always release."""
    engine = _job_engine(to_sync_url(url))
    is_postgres = engine.dialect.name == "postgresql"
    try:
        try:
            connection = engine.connect()
        except OperationalError as exc:
            # The driver's message names host, port, user and database, never the password.
            raise DatabaseUnreachable(f"cannot connect to the database: {exc.orig}") from exc
        with connection:
            if is_postgres:
                connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": ADVISORY_LOCK_KEY})
                connection.commit()
            try:
                config = alembic_config(connection, directory=directory)
                return _migrate(connection, config, action, revision, allow_newer_schema)
            finally:
                _release(connection, unlock=is_postgres)
    finally:
        engine.dispose()


def _migrate(
    connection: Connection,
    config: Config,
    action: Literal["upgrade", "downgrade"],
    revision: str,
    allow_newer_schema: bool,
) -> str | None:
    current = MigrationContext.configure(connection).get_current_heads()
    connection.commit()  # end the autobegun read so Alembic opens the migration transaction
    scripts = ScriptDirectory.from_config(config)
    unknown = [rev for rev in current if not _knows(scripts, rev)]
    if unknown and allow_newer_schema:
        logger.warning("database is at %s, newer than these migrations: left alone", unknown)
        return unknown[0]
    if action == "upgrade":
        command.upgrade(config, revision)
    else:
        command.downgrade(config, revision)
    connection.commit()
    return MigrationContext.configure(connection).get_current_revision()


def _job_engine(sync_url: URL) -> Engine:
    """A pool-less engine for one job that never echoes parameters; on PostgreSQL it fails fast
    when the server is unreachable and speaks TLS when configured (``DATABASE_SSLMODE``)."""
    connect_args: dict[str, object] = {}
    if sync_url.get_backend_name() == "postgresql":
        connect_args = {"connect_timeout": CONNECT_TIMEOUT_SECONDS, **tls_connect_args()}
    return create_engine(
        sync_url, poolclass=NullPool, connect_args=connect_args, hide_parameters=True
    )


def _knows(scripts: ScriptDirectory, revision: str) -> bool:
    try:
        return scripts.get_revision(revision) is not None
    except CommandError:
        return False


def _release(connection: Connection, *, unlock: bool) -> None:
    """End any failed transaction and release the lock, without masking the original error.

    If the connection itself is broken, closing it releases the session-level lock anyway.
    """
    try:
        if connection.in_transaction():
            connection.rollback()
        if unlock:
            connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_LOCK_KEY})
            connection.commit()
    except SQLAlchemyError:
        logger.warning("could not release the migration lock explicitly; closing the connection")
