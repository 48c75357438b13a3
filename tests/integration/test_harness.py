"""The harness itself: the run's database is real PostgreSQL at the migrated head."""

from chatkit_backend.db import Database
from sqlalchemy import text


async def test_pg_database_is_postgres_at_head(pg_database: Database) -> None:
    async with pg_database.session() as session:
        version = (await session.execute(text("SELECT version()"))).scalar_one()
        revision = (
            await session.execute(text("SELECT version_num FROM alembic_version"))
        ).scalar_one()
    assert version.startswith("PostgreSQL")
    assert revision
