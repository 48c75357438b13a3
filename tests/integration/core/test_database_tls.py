"""``DATABASE_SSLMODE`` reaches every PostgreSQL connection: the app engine's and the migration
job's. The local server speaks no TLS, so ``require`` must fail there (and ``disable`` work):
proof that the mode is really what the driver is given, not a setting nobody reads."""

from __future__ import annotations

import migration_runner
import pytest
from chatkit_backend.db import Database
from chatkit_backend.settings import Settings, get_settings
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

pytestmark = pytest.mark.postgres_only


async def test_the_app_engine_requires_tls_when_told(pg_url: str) -> None:
    required = Database.from_url(pg_url, Settings(database_sslmode="require"))
    try:
        with pytest.raises(OperationalError, match="SSL"):
            async with required.session() as session:
                await session.execute(text("SELECT 1"))
    finally:
        await required.dispose()
    plain = Database.from_url(pg_url, Settings(database_sslmode="disable"))
    try:
        async with plain.session() as session:
            assert (await session.execute(text("SELECT 1"))).scalar() == 1
    finally:
        await plain.dispose()


def test_the_migration_job_requires_tls_when_told(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_SSLMODE", "require")
    get_settings.cache_clear()
    try:
        with pytest.raises(migration_runner.DatabaseUnreachable, match="SSL"):
            migration_runner.upgrade(pg_url)
    finally:
        get_settings.cache_clear()
