"""The conversations function's SQL: every statement over ``threads`` and ``thread_items``,
and over every user-scoped table for the caller's erasure and export.

Every statement is scoped by the caller's user id. Reads select only the plain columns the REST
view needs (of the item JSON, only a message's ``attachments`` list and widget items, whose widget
the REST view returns); paging is keyset paging on the schema's indexes: conversations by
``(user_id, updated_at, pk)`` newest first, messages by ``(user_id, thread_id, created_at, pk)``
oldest first. Writes keep the thread's ChatKit JSON (``data``, the source of truth the ChatKit
store reads) in step with the plain columns.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chatkit_backend.ids import new_id
from chatkit_backend.tables import ITEMS, THREADS, JsonDocument, user_tables, utcnow
from chatkit_backend.titles import renamed_by_user
from sqlalchemy import Row, Select, case, delete, insert, null, select, tuple_, type_coerce, update
from sqlalchemy.ext.asyncio import AsyncSession

AnyRow = Row[*tuple[Any, ...]]
"""A result row of any width (its columns are read by name)."""

CONVERSATION_COLUMNS = (
    THREADS.c.id,
    THREADS.c.title,
    THREADS.c.created_at,
    THREADS.c.updated_at,
    THREADS.c.pk,
)
MESSAGE_COLUMNS = (
    ITEMS.c.id,
    ITEMS.c.role,
    ITEMS.c.content_text,
    ITEMS.c.created_at,
    ITEMS.c.tool_calls,
    ITEMS.c.data["attachments"].label("attachments"),
    type_coerce(case((ITEMS.c.role == "widget", ITEMS.c.data), else_=null()), JsonDocument).label(
        "widget_item"
    ),
    ITEMS.c.pk,
)


def thread_document(thread_id: str, title: str | None, created_at: datetime) -> dict[str, Any]:
    """A new thread's ChatKit JSON, exactly as the ChatKit store writes ``ThreadMetadata``.

    Written here so the CRUD function never imports the ChatKit SDK (its cold start); a test
    pins the shape to the SDK's own ``model_dump``.
    """
    return {
        "title": title,
        "id": thread_id,
        "created_at": created_at.isoformat().replace("+00:00", "Z"),
        "status": {"type": "active"},
        "allowed_image_domains": None,
        "metadata": {},
    }


def conversations(user_id: str) -> Select[Any]:
    """The user's conversations, newest update first: a backward scan of the updated index."""
    return (
        select(*CONVERSATION_COLUMNS)
        .where(THREADS.c.user_id == user_id)
        .order_by(THREADS.c.updated_at.desc(), THREADS.c.pk.desc())
    )


def conversations_before(query: Select[Any], updated_at: datetime, pk: int) -> Select[Any]:
    return query.where(tuple_(THREADS.c.updated_at, THREADS.c.pk) < (updated_at, pk))


async def find_conversation(
    session: AsyncSession, user_id: str, conversation_id: str
) -> AnyRow | None:
    query = select(*CONVERSATION_COLUMNS).where(
        THREADS.c.user_id == user_id, THREADS.c.id == conversation_id
    )
    return (await session.execute(query)).first()


def messages(user_id: str, conversation_id: str, after: tuple[datetime, int] | None) -> Select[Any]:
    """The messages in creation order after ``after``; items without a role (widgets, workflows,
    hidden context) are not messages."""
    query = (
        select(*MESSAGE_COLUMNS)
        .where(
            ITEMS.c.user_id == user_id,
            ITEMS.c.thread_id == conversation_id,
            ITEMS.c.role.is_not(None),
        )
        .order_by(ITEMS.c.created_at, ITEMS.c.pk)
    )
    if after is not None:
        query = query.where(tuple_(ITEMS.c.created_at, ITEMS.c.pk) > after)
    return query


async def insert_conversation(session: AsyncSession, user_id: str, title: str | None) -> AnyRow:
    now = utcnow()
    thread_id = new_id("thread")
    statement = (
        insert(THREADS)
        .values(
            user_id=user_id,
            id=thread_id,
            title=title,
            created_at=now,
            updated_at=now,
            data=thread_document(thread_id, title, now),
        )
        .returning(*CONVERSATION_COLUMNS)
    )
    return (await session.execute(statement)).one()


async def rename_conversation(
    session: AsyncSession, user_id: str, conversation_id: str, title: str
) -> AnyRow | None:
    """Set the title column and the JSON's title together; the row is locked in between."""
    owned = (THREADS.c.user_id == user_id) & (THREADS.c.id == conversation_id)
    data = (
        await session.execute(select(THREADS.c.data).where(owned).with_for_update())
    ).scalar_one_or_none()
    if data is None:
        return None
    statement = (
        update(THREADS)
        .where(owned)
        .values(title=title, data=renamed_by_user(data, title), updated_at=utcnow())
        .returning(*CONVERSATION_COLUMNS)
    )
    return (await session.execute(statement)).one()


async def delete_conversation(session: AsyncSession, user_id: str, conversation_id: str) -> bool:
    """One statement: the foreign keys cascade to the items and attachments."""
    statement = (
        delete(THREADS)
        .where(THREADS.c.user_id == user_id, THREADS.c.id == conversation_id)
        .returning(THREADS.c.pk)
    )
    return (await session.execute(statement)).first() is not None


async def erase_user(session: AsyncSession, user_id: str) -> dict[str, int]:
    """Delete every row of ``user_id`` in every user-scoped table; rows deleted per table.

    Children first (:func:`chatkit_backend.tables.user_tables`), so no foreign key is in the
    way and each count is the table's own rows (none is hidden in a cascade).
    """
    counts: dict[str, int] = {}
    for table in user_tables():
        result = await session.execute(delete(table).where(table.c.user_id == user_id))
        counts[table.name] = int(getattr(result, "rowcount", 0) or 0)
    return counts


async def export_user(session: AsyncSession, user_id: str) -> dict[str, list[dict[str, Any]]]:
    """Every row of ``user_id`` in every user-scoped table (parents first), all columns but the
    surrogate ``pk``, in primary-key (creation) order."""
    exported: dict[str, list[dict[str, Any]]] = {}
    for table in reversed(user_tables()):
        columns = [column for column in table.c if column.name != "pk"]
        query = (
            select(*columns).where(table.c.user_id == user_id).order_by(*table.primary_key.columns)
        )
        exported[table.name] = [dict(row) for row in (await session.execute(query)).mappings()]
    return exported
