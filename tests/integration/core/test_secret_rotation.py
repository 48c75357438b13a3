"""A warm process keeps connecting after the database secret rotates (moto + real PostgreSQL).

The local server trusts every login, so a changed *password* would not be refused; the test
rotates the way Secrets Manager's alternating-users strategy does instead: the secret moves to a
second role and the first one stops being allowed to log in. The failure the process sees is the
same (a refused login on a new connection while the cached secret is stale).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator, Iterator

import boto3
import pytest
from chatkit_backend import db as db_module
from chatkit_backend.db import Database, get_database, set_database
from chatkit_backend.rotation import follow_secret_rotation
from chatkit_backend.secrets import database_url_from_secret
from chatkit_backend.settings import get_settings
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from tests.support.aws import fake_aws
from tests.support.databases import admin_url

pytestmark = pytest.mark.postgres_only


def _admin(sql: str) -> None:
    engine = create_engine(
        make_url(admin_url()).set(drivername="postgresql+psycopg"),
        poolclass=NullPool,
        isolation_level="AUTOCOMMIT",
    )
    with engine.connect() as conn:
        conn.execute(text(sql))
    engine.dispose()


@pytest.fixture
def roles() -> Iterator[tuple[str, str]]:
    """Two login roles: the one the secret names first, and the one it rotates to."""
    suffix = secrets.token_hex(4)
    names = (f"ckb_rot_a_{suffix}", f"ckb_rot_b_{suffix}")
    for name in names:
        _admin(f'CREATE ROLE "{name}" LOGIN')
    yield names
    for name in names:
        _admin(f'DROP ROLE IF EXISTS "{name}"')


@pytest.fixture
def secret_arn(
    monkeypatch: pytest.MonkeyPatch, pg_url: str, roles: tuple[str, str]
) -> Iterator[str]:
    with fake_aws(monkeypatch):
        client = boto3.client("secretsmanager")
        arn = client.create_secret(Name="db", SecretString=_secret(pg_url, roles[0]))["ARN"]
        yield arn


def _secret(pg_url: str, user: str) -> str:
    url = make_url(pg_url)
    return json.dumps(
        {
            "host": url.host,
            "port": url.port or 5432,
            "username": user,
            "password": secrets.token_urlsafe(16),
            "dbname": url.database,
        }
    )


def rotate(arn: str, pg_url: str, old_user: str, new_user: str) -> None:
    """Point the secret at ``new_user`` and stop ``old_user`` from logging in."""
    boto3.client("secretsmanager").put_secret_value(
        SecretId=arn, SecretString=_secret(pg_url, new_user)
    )
    _admin(f'ALTER ROLE "{old_user}" NOLOGIN')


async def current_user(database: Database) -> str:
    async with database.session() as session:
        return str((await session.execute(text("SELECT current_user"))).scalar_one())


@pytest.fixture
async def database(secret_arn: str) -> AsyncIterator[Database]:
    database = Database.from_url(database_url_from_secret(secret_arn))
    yield database
    await database.dispose()


async def test_new_connections_log_in_with_the_rotated_secret(
    database: Database, secret_arn: str, pg_url: str, roles: tuple[str, str]
) -> None:
    follow_secret_rotation(database.engine, secret_arn)
    assert await current_user(database) == roles[0]

    rotate(secret_arn, pg_url, *roles)
    assert database_url_from_secret(secret_arn).count(roles[0]) == 1, "cache still stale"
    await database.engine.dispose()  # the next session needs a new connection

    assert await current_user(database) == roles[1]
    # the forced read refreshed the cache: later connections use the new role directly
    assert roles[1] in database_url_from_secret(secret_arn)


async def test_without_the_hook_the_stale_secret_is_refused(
    database: Database, secret_arn: str, pg_url: str, roles: tuple[str, str]
) -> None:
    assert await current_user(database) == roles[0]
    rotate(secret_arn, pg_url, *roles)
    await database.engine.dispose()
    with pytest.raises(OperationalError, match="not permitted to log in"):
        await current_user(database)


async def test_an_unchanged_secret_does_not_hide_the_login_failure(
    database: Database, secret_arn: str, roles: tuple[str, str]
) -> None:
    follow_secret_rotation(database.engine, secret_arn)
    assert await current_user(database) == roles[0]
    _admin(f'ALTER ROLE "{roles[0]}" NOLOGIN')  # refused, but the secret did not change
    await database.engine.dispose()
    with pytest.raises(OperationalError, match="not permitted to log in"):
        await current_user(database)


async def test_the_process_database_follows_its_secret(
    monkeypatch: pytest.MonkeyPatch, secret_arn: str, pg_url: str, roles: tuple[str, str]
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("DATABASE_SECRET_ARN", secret_arn)
    get_settings.cache_clear()
    previous = db_module._database
    set_database(None)
    try:
        database = get_database()
        assert await current_user(database) == roles[0]
        rotate(secret_arn, pg_url, *roles)
        await database.engine.dispose()
        assert await current_user(database) == roles[1]
        await database.dispose()
    finally:
        set_database(previous)
        get_settings.cache_clear()
