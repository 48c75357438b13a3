"""attachment uploads: when the bytes were stored, and the indexes their deletions use

``stored_at`` is set when an uploaded attachment's bytes are checked and moved into place (its
first send); attachments from before have no bytes and stay NULL. ``ix_attachments_user_thread``
serves deleting a thread's bytes (and the cascade), ``ix_attachments_unsent`` the sweep of
attachments created but never sent.

Revision ID: 0003_attachment_uploads
Revises: 0005_app_role
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_attachment_uploads"
down_revision: str | None = "0005_app_role"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNSENT = sa.text("thread_id IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("attachments") as batch:
        batch.add_column(sa.Column("stored_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_attachments_user_thread", "attachments", ["user_id", "thread_id"], unique=False
    )
    op.create_index(
        "ix_attachments_unsent",
        "attachments",
        ["created_at"],
        unique=False,
        postgresql_where=UNSENT,
        sqlite_where=UNSENT,
    )


def downgrade() -> None:
    op.drop_index("ix_attachments_unsent", table_name="attachments")
    op.drop_index("ix_attachments_user_thread", table_name="attachments")
    with op.batch_alter_table("attachments") as batch:
        batch.drop_column("stored_at")
