"""user limits: each user's turn bucket, running-turn leases and token sum of the day

One row per user (``chat_app.turn_limits``), written by the statement that admits a turn and the
one that ends it. The app role reaches the table through the default privileges of
``0005_app_role`` (tables this owner creates later).

Revision ID: 0004_user_limits
Revises: 0003_attachment_uploads
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004_user_limits"
down_revision: str | None = "0003_attachment_uploads"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "user_limits",
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("turn_allowance", sa.Float(), nullable=False),
        sa.Column("allowance_at", sa.Float(), nullable=False),
        sa.Column(
            "leases",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("usage_day", sa.Integer(), nullable=False),
        sa.Column("tokens_today", sa.BigInteger(), nullable=False),
        sa.Column("turns_per_minute", sa.Integer(), nullable=True),
        sa.Column("concurrent_turns", sa.Integer(), nullable=True),
        sa.Column("tokens_per_day", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_user_limits")),
    )


def downgrade() -> None:
    op.drop_table("user_limits")
