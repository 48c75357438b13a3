"""Copies of the project's Alembic environment with extra revisions, for migration-job tests.

Tests point ``MIGRATIONS_DIR`` (or ``directory=``) at such a copy to play a deploy that brings a
new revision, good or bad, without touching the real ``migrations/`` folder.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from chatkit_backend.settings import PROJECT_ROOT

PROJECT_MIGRATIONS = PROJECT_ROOT / "migrations"
PROJECT_HEAD = "0004_user_limits"
"""The head of the real scripts (tests assert against it; bump it with each new revision)."""

_HEADER = '''"""{message}"""

import sqlalchemy as sa
from alembic import op

revision = "{revision}"
down_revision = "{down_revision}"
branch_labels = None
depends_on = None
'''

ADD_TABLE = (
    "add a table",
    """
def upgrade() -> None:
    op.create_table(
        "release_notes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("body", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("release_notes")
""",
)
"""A good revision: adds the table ``release_notes``."""

FAILS_HALFWAY = (
    "create a table, then fail",
    """
def upgrade() -> None:
    op.create_table("half_done", sa.Column("id", sa.Integer(), primary_key=True))
    op.execute("ALTER TABLE no_such_table ADD COLUMN oops integer")


def downgrade() -> None:
    op.drop_table("half_done")
""",
)
"""A bad revision: its first statement succeeds, its second fails (``no_such_table``)."""


def migrations_with(
    destination: Path, *revisions: tuple[str, str], down_revision: str = PROJECT_HEAD
) -> Path:
    """Copy the project's migrations to ``destination`` and chain ``revisions`` after its head.

    The new revisions are numbered ``0101``, ``0102``, ... in order; returns the copy's folder.
    """
    shutil.copytree(PROJECT_MIGRATIONS, destination, ignore=shutil.ignore_patterns("__pycache__"))
    previous = down_revision
    for number, (message, body) in enumerate(revisions, start=101):
        revision = f"{number:04d}"
        header = _HEADER.format(message=message, revision=revision, down_revision=previous)
        (destination / "versions" / f"{revision}_test.py").write_text(header + body)
        previous = revision
    return destination
