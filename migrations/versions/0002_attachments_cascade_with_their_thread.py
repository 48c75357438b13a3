"""attachments cascade with their thread

Deleting a thread now deletes the metadata of the attachments it holds, in the same statement
(the items already cascade). Attachments whose thread is already gone are removed first, or the
foreign key could not be created on a live database.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FOREIGN_KEY = "fk_attachments_user_id_thread_id_threads"


def upgrade() -> None:
    op.execute(
        sa.text(
            "DELETE FROM attachments WHERE thread_id IS NOT NULL AND NOT EXISTS ("
            "SELECT 1 FROM threads WHERE threads.user_id = attachments.user_id "
            "AND threads.id = attachments.thread_id)"
        )
    )
    with op.batch_alter_table("attachments") as batch:
        batch.create_foreign_key(
            FOREIGN_KEY,
            "threads",
            ["user_id", "thread_id"],
            ["user_id", "id"],
            ondelete="CASCADE",
        )


def downgrade() -> None:
    with op.batch_alter_table("attachments") as batch:
        batch.drop_constraint(FOREIGN_KEY, type_="foreignkey")
