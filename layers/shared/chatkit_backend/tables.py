"""SQLModel tables: the single description of the schema (Alembic revisions must match it).

Every natural key starts with ``user_id``, so an upsert of a foreign id can only touch the
caller's rows. The ChatKit JSON (``data``) is the source of truth; plain columns exist only for
queries. ``pk`` is a monotonic surrogate key, the paging tie-breaker (ChatKit ids are random).
Items and attachments cascade with their thread (SQLite needs ``PRAGMA foreign_keys=ON``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
SQLModel.metadata.naming_convention = NAMING_CONVENTION
metadata: MetaData = SQLModel.metadata

JsonDocument = JSON().with_variant(JSONB(), "postgresql")
"""JSONB on PostgreSQL (compact, indexable), plain JSON text on SQLite."""

SurrogateKey = BigInteger().with_variant(Integer(), "sqlite")
"""BIGSERIAL on PostgreSQL; SQLite only auto-increments an ``INTEGER PRIMARY KEY``."""


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware.

    SQLite keeps no offset, PostgreSQL's ``timestamptz`` does; normalising on the way in makes the
    ordering columns comparable on both. Naive values (the ChatKit SDK uses ``datetime.now()``) are
    taken as UTC, which is the clock of every Lambda sandbox.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return self.process_bind_param(value, dialect)


MessageRole = Literal["user", "assistant", "tool", "widget"]
"""Values of ``thread_items.role``: the items the REST view lists as messages (others are NULL)."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def _surrogate_key() -> Any:
    return Field(
        default=None, sa_column=Column("pk", SurrogateKey, primary_key=True, autoincrement=True)
    )


def _timestamp() -> Any:
    return Field(default_factory=utcnow, sa_column_kwargs={"nullable": False}, sa_type=UTCDateTime)


class ThreadRow(SQLModel, table=True):
    """A conversation. ``data`` is ``ThreadMetadata`` as JSON (never its items)."""

    __tablename__ = "threads"
    __table_args__ = (
        UniqueConstraint("user_id", "id"),
        Index("ix_threads_user_created", "user_id", "created_at", "pk"),
        Index("ix_threads_user_updated", "user_id", "updated_at", "pk"),
    )

    pk: int | None = _surrogate_key()
    user_id: str = Field(sa_type=String(255), nullable=False)
    id: str = Field(sa_type=String(128), nullable=False)
    title: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = _timestamp()
    updated_at: datetime = _timestamp()
    data: dict[str, Any] = Field(sa_type=JsonDocument, nullable=False)


class ThreadItemRow(SQLModel, table=True):
    """One ChatKit thread item. ``data`` is the item as JSON; the rest serves queries."""

    __tablename__ = "thread_items"
    __table_args__ = (
        UniqueConstraint("user_id", "thread_id", "id"),
        ForeignKeyConstraint(
            ["user_id", "thread_id"],
            ["threads.user_id", "threads.id"],
            ondelete="CASCADE",
        ),
        Index("ix_thread_items_page", "user_id", "thread_id", "created_at", "pk"),
    )

    pk: int | None = _surrogate_key()
    user_id: str = Field(sa_type=String(255), nullable=False)
    thread_id: str = Field(sa_type=String(128), nullable=False)
    id: str = Field(sa_type=String(128), nullable=False)
    type: str = Field(sa_type=String(64), nullable=False)
    role: str | None = Field(default=None, sa_type=String(16))
    content_text: str | None = Field(default=None, sa_type=Text)
    tool_calls: list[dict[str, Any]] | None = Field(default=None, sa_type=JsonDocument)
    feedback: str | None = Field(default=None, sa_type=String(16))
    created_at: datetime = _timestamp()
    data: dict[str, Any] = Field(sa_type=JsonDocument, nullable=False)


class AttachmentRow(SQLModel, table=True):
    """Attachment metadata (``data`` is the ChatKit ``Attachment``); the bytes live in S3 or
    under ``DATA_DIR`` (:mod:`chatkit_backend.attachments`). ``stored_at``: when the uploaded
    bytes were checked and moved into place (NULL until the attachment is first sent)."""

    __tablename__ = "attachments"
    __table_args__ = (
        UniqueConstraint("user_id", "id"),
        Index("ix_attachments_user_thread", "user_id", "thread_id"),
        # Partial on both databases (migration 0003); only PostgreSQL's side is declared here:
        # an ``sqlite_where`` would load SQLAlchemy's SQLite dialect in every function at import.
        Index("ix_attachments_unsent", "created_at", postgresql_where=text("thread_id IS NULL")),
        # Attached metadata goes with its thread; unattached rows (thread_id NULL) are not bound.
        ForeignKeyConstraint(
            ["user_id", "thread_id"],
            ["threads.user_id", "threads.id"],
            ondelete="CASCADE",
        ),
    )

    pk: int | None = _surrogate_key()
    user_id: str = Field(sa_type=String(255), nullable=False)
    id: str = Field(sa_type=String(128), nullable=False)
    thread_id: str | None = Field(default=None, sa_type=String(128))
    created_at: datetime = _timestamp()
    stored_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    data: dict[str, Any] = Field(sa_type=JsonDocument, nullable=False)


class TaskRow(SQLModel, table=True):
    """A todo of the agent's task tools, owned by one user."""

    __tablename__ = "tasks"
    __table_args__ = (Index("ix_tasks_user", "user_id", "completed", "id"),)

    id: int | None = Field(
        default=None, sa_column=Column("id", SurrogateKey, primary_key=True, autoincrement=True)
    )
    user_id: str = Field(sa_type=String(255), nullable=False)
    title: str = Field(sa_type=String(500), nullable=False)
    description: str | None = Field(default=None, sa_type=Text)
    completed: bool = Field(default=False, sa_type=Boolean, nullable=False)
    created_at: datetime = _timestamp()
    updated_at: datetime = _timestamp()


class UserLimitRow(SQLModel, table=True):
    """One user's fair-use state (``chat_app.turn_limits``): the turn bucket, the running turns'
    leases and the day's token sum, all changed by one statement per turn start and one per end.

    Times are seconds since the epoch (arithmetic the same on both dialects); ``leases`` maps
    each running turn's lease id to its expiry. The three ``*_per_*`` / ``concurrent_turns``
    columns override the settings for this user (NULL: the settings' value).
    """

    __tablename__ = "user_limits"

    user_id: str = Field(sa_type=String(255), primary_key=True)
    turn_allowance: float = Field(sa_type=Float, nullable=False)
    allowance_at: float = Field(sa_type=Float, nullable=False)
    leases: dict[str, Any] = Field(sa_type=JsonDocument, nullable=False)
    usage_day: int = Field(sa_type=Integer, nullable=False)
    tokens_today: int = Field(sa_type=BigInteger, nullable=False)
    turns_per_minute: int | None = Field(default=None, sa_type=Integer, nullable=True)
    concurrent_turns: int | None = Field(default=None, sa_type=Integer, nullable=True)
    tokens_per_day: int | None = Field(default=None, sa_type=BigInteger, nullable=True)
    updated_at: datetime = _timestamp()


# The one data-access style of the project: SQLAlchemy Core statements over these tables (the
# SQLModel classes above describe the schema; no code loads rows as ORM objects).
THREADS: Table = metadata.tables["threads"]
ITEMS: Table = metadata.tables["thread_items"]
ATTACHMENTS: Table = metadata.tables["attachments"]
TASKS: Table = metadata.tables["tasks"]
USER_LIMITS: Table = metadata.tables["user_limits"]


def user_tables() -> list[Table]:
    """Every table with a ``user_id`` column, children before parents (safe to delete in order).

    The one list erasure, export and the erasure test walk: a table added to this module with a
    ``user_id`` column is covered by construction, whichever feature adds it.
    """
    return [table for table in reversed(metadata.sorted_tables) if "user_id" in table.c]


def expiring_tables() -> list[Table]:
    """Every table with an ``expires_at`` column: rows past it are swept by the retention job."""
    return [table for table in reversed(metadata.sorted_tables) if "expires_at" in table.c]
