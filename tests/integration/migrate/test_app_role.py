"""The app role on a real PostgreSQL: the migration job creates it, grants it data rights and sets
its password from the app secret; connected as that role, the app reads and writes rows and
every kind of DDL is refused.

The local server trusts connections, so the password itself is not checked here; LOGIN is (a
role without it cannot connect at all, which the first test shows before the password is set).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import migration_runner
import pytest
from chatkit.types import ThreadMetadata
from chatkit_backend.caller import Caller
from chatkit_backend.db import Database, to_sync_url
from chatkit_backend.errors import ConfigurationError
from chatkit_backend.ids import new_id
from chatkit_backend.settings import Settings
from chatkit_backend.store import PostgresStore
from chatkit_backend.tables import utcnow
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.pool import NullPool

from tests.support.aws import fake_aws
from tests.support.databases import scratch_database
from tests.support.migration_scripts import PROJECT_HEAD

pytestmark = pytest.mark.postgres_only

APP_PASSWORD = "app-role-password-0123456789"
DDL = [
    "CREATE TABLE sneaky (id int)",
    "DROP TABLE threads",
    "ALTER TABLE threads ADD COLUMN extra text",
    "TRUNCATE threads",
    "CREATE SCHEMA sneaky",
    "CREATE INDEX ix_sneaky ON threads (title)",
    "UPDATE alembic_version SET version_num = '0001'",
    "CREATE ROLE sneaky",
    "COMMENT ON TABLE threads IS 'mine now'",
    "CREATE FUNCTION sneaky() RETURNS int LANGUAGE sql AS 'SELECT 1'",
]


@pytest.fixture
def database_url() -> Iterator[str]:
    with scratch_database("ckb_approle") as url:
        yield url


@pytest.fixture
def app_secret(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A factory of app secrets in moto's Secrets Manager (the database stack's shape)."""
    with fake_aws(monkeypatch):
        client = boto3.client("secretsmanager")

        def make(**fields: Any) -> str:
            return str(
                client.create_secret(Name=new_id("app"), SecretString=json.dumps(fields))["ARN"]
            )

        yield make


def as_app(url: str) -> str:
    return (
        make_url(url)
        .set(username="chatkit_app", password=APP_PASSWORD)
        .render_as_string(hide_password=False)
    )


def test_the_role_is_created_without_login_and_granted_data_rights(database_url: str) -> None:
    migration_runner.upgrade(database_url)
    engine = create_engine(to_sync_url(database_url), poolclass=NullPool)
    try:
        with engine.connect() as connection:
            rights = connection.execute(
                text(
                    "SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole FROM pg_roles "
                    "WHERE rolname = 'chatkit_app'"
                )
            ).one()
            assert tuple(rights) in {(False, False, False, False), (True, False, False, False)}
            for table in ("threads", "thread_items", "attachments", "tasks"):
                for privilege in ("SELECT", "INSERT", "UPDATE", "DELETE"):
                    assert connection.execute(
                        text("SELECT has_table_privilege('chatkit_app', :t, :p)"),
                        {"t": table, "p": privilege},
                    ).scalar(), (table, privilege)
                assert not connection.execute(
                    text("SELECT has_table_privilege('chatkit_app', :t, 'TRUNCATE')"), {"t": table}
                ).scalar()
            assert not connection.execute(
                text("SELECT has_schema_privilege('chatkit_app', 'public', 'CREATE')")
            ).scalar()
            assert not connection.execute(
                text("SELECT has_database_privilege('chatkit_app', current_database(), 'CREATE')")
            ).scalar()
            assert not connection.execute(
                text("SELECT has_table_privilege('chatkit_app', 'alembic_version', 'UPDATE')")
            ).scalar()
    finally:
        engine.dispose()


async def test_connected_as_the_app_role_rows_work_and_ddl_is_refused(
    database_url: str, app_secret: Any
) -> None:
    arn = app_secret(username="chatkit_app", password=APP_PASSWORD)
    settings = Settings(database_url=database_url, app_database_secret_arn=arn)
    assert migration_runner.upgrade_deployed(settings) == PROJECT_HEAD

    app = Database.from_url(as_app(database_url))
    try:
        store = PostgresStore(app)
        user = Caller(user_id="app-role-user")
        thread = ThreadMetadata(id=new_id("thread"), created_at=utcnow(), title="hello")
        await store.save_thread(thread, user)
        assert (await store.load_thread(thread.id, user)).title == "hello"
        await store.delete_thread(thread.id, user)
    finally:
        await app.dispose()

    engine = create_engine(to_sync_url(as_app(database_url)), poolclass=NullPool)
    try:
        for statement in DDL:
            with engine.connect() as connection, pytest.raises(ProgrammingError) as refused:
                connection.execute(text(statement))
            message = str(refused.value.orig)
            assert "permission denied" in message or "must be owner" in message, statement
        with engine.connect() as connection:
            assert connection.execute(text("SELECT current_user")).scalar() == "chatkit_app"
    finally:
        engine.dispose()


def test_a_secret_for_another_user_is_refused(database_url: str, app_secret: Any) -> None:
    arn = app_secret(username="chatkit_admin", password=APP_PASSWORD)
    settings = Settings(database_url=database_url, app_database_secret_arn=arn)
    with pytest.raises(ConfigurationError, match="chatkit_app"):
        migration_runner.upgrade_deployed(settings)


def test_without_login_the_role_cannot_connect(database_url: str) -> None:
    """Before the migration job sets its password, the role exists but cannot log in."""
    migration_runner.upgrade(database_url)
    engine = create_engine(to_sync_url(database_url), poolclass=NullPool)
    with engine.begin() as connection:
        connection.execute(text("ALTER ROLE chatkit_app NOLOGIN"))
    engine.dispose()
    app = create_engine(to_sync_url(as_app(database_url)), poolclass=NullPool)
    try:
        with pytest.raises(OperationalError, match="not permitted to log in"):
            app.connect()
    finally:
        app.dispose()
        with engine.begin() as connection:  # the role is the server's: leave it as it was
            connection.execute(text("ALTER ROLE chatkit_app LOGIN"))
        engine.dispose()
