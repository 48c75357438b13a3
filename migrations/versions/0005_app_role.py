"""the app role: data rights only, no DDL

The migration job runs as the database owner; the app functions connect as ``chatkit_app``, a
role that may read and write the rows of every table (present and future: default privileges
for what this owner creates later) and nothing else: no CREATE on the schema or the database,
no ALTER, DROP or TRUNCATE, no write to ``alembic_version``. The role is created without LOGIN;
the migration job gives it its password from the app secret (``APP_DATABASE_SECRET_ARN``).

PostgreSQL only: SQLite (the local dev server) has no roles, so there this revision does nothing.
Roles belong to the whole server: creation tolerates a concurrent creator, and the downgrade
revokes this database's rights but leaves the role (other databases may use it).

Revision ID: 0005_app_role
Revises: 0002
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_app_role"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "chatkit_app"

CREATE_ROLE = f"""
DO $$
BEGIN
  CREATE ROLE {APP_ROLE} NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
  NULL;  -- it exists already (another database of this server, or a concurrent migration)
END
$$
"""

GRANTS = [
    f"DO $$ BEGIN EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO {APP_ROLE}', "
    "current_database()); END $$",
    f"DO $$ BEGIN EXECUTE format('REVOKE CREATE ON DATABASE %I FROM {APP_ROLE}', "
    "current_database()); END $$",
    # PostgreSQL before 15 lets PUBLIC create in the public schema: no longer, except the owner.
    "REVOKE CREATE ON SCHEMA public FROM PUBLIC",
    "GRANT USAGE, CREATE ON SCHEMA public TO CURRENT_USER",
    f"GRANT USAGE ON SCHEMA public TO {APP_ROLE}",
    f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {APP_ROLE}",
    f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {APP_ROLE}",
    f"ALTER DEFAULT PRIVILEGES IN SCHEMA public "
    f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {APP_ROLE}",
    f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {APP_ROLE}",
    f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON alembic_version FROM {APP_ROLE}",
]


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(sa.text(CREATE_ROLE))
    for statement in GRANTS:
        op.execute(sa.text(statement))


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for statement in [
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON TABLES FROM {APP_ROLE}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON SEQUENCES FROM {APP_ROLE}",
        f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {APP_ROLE}",
        f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {APP_ROLE}",
        f"REVOKE ALL ON SCHEMA public FROM {APP_ROLE}",
        f"DO $$ BEGIN EXECUTE format('REVOKE ALL ON DATABASE %I FROM {APP_ROLE}', "
        "current_database()); END $$",
    ]:
        op.execute(sa.text(statement))
