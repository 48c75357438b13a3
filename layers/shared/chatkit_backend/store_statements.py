"""The store's statements of every turn, built once per dialect with bound parameters.

Building a SQLAlchemy statement (and generating its cache key) costs more CPU than running it
through the compiled cache; a turn writes and reads its items and thread several times. So the
statements the store runs on every turn are built here once, each with named parameters, and a
call binds only values. The rest of the store builds its (rarer) statements as it goes.

Parameter names differ from column names: an ``INSERT``/``UPDATE`` reserves its columns' names.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import (
    JSON,
    BindParameter,
    Select,
    Table,
    Text,
    and_,
    bindparam,
    case,
    cast,
    func,
    literal_column,
    select,
    tuple_,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert

from .tables import ITEMS, THREADS, UTCDateTime
from .titles import TITLE_SOURCE_KEY

OWNER = "owner"
"""The caller's ``user_id``."""
THREAD = "thread"
"""The thread's id."""
NOW = "now"
"""The write's ``updated_at``."""
PAGE_LIMIT = "page_limit"
CURSOR = "page_cursor"

ITEM_COLUMNS = ("id", "type", "role", "content_text", "tool_calls", "created_at", "data")
"""The columns an item write binds (its owner and thread come from the thread row)."""

THREAD_COLUMNS = ("id", "title", "created_at", "data")
"""The columns a thread write binds besides its owner and ``updated_at``."""

NullableJson = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")
"""A JSON parameter whose ``None`` is SQL NULL (the columns' own type would bind JSON ``null``)."""

Order = Literal["asc", "desc"]


def item_parameter(name: str) -> str:
    return f"item_{name}"


def thread_parameter(name: str) -> str:
    return f"thread_{name}"


def _bound(table: Table, name: str, key: str) -> BindParameter[Any]:
    column_type = table.c[name].type
    return bindparam(key, type_=NullableJson if isinstance(column_type, JSON) else column_type)


def _mine(table: Table) -> tuple[Any, Any]:
    """The caller's row of ``table`` by id (``OWNER``, ``THREAD``)."""
    return (table.c.user_id == bindparam(OWNER), table.c.id == bindparam(THREAD))


@dataclass(frozen=True)
class StoreStatements:
    """One dialect's statements (see the module docstring)."""

    load_thread: Select[Any]
    save_thread: Any
    add_item: Any
    """PostgreSQL: insert the item and bump the thread in one statement (``RETURNING`` a row
    when it did both). Elsewhere: the insert alone (``RETURNING`` the inserted row)."""
    touch_thread: Any
    """The bump alone (for dialects without writable CTEs)."""
    save_item: Any


def dialect_insert(dialect: str) -> Callable[[Table], Any]:
    """``insert()`` of ``dialect`` (``postgresql`` or ``sqlite``), which has ``ON CONFLICT``."""
    if dialect == "postgresql":
        return pg_insert
    # Imported here: a deployed function (PostgreSQL) never loads the SQLite dialect.
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


@functools.cache
def store_statements(dialect: str) -> StoreStatements:
    """The statements of ``dialect`` (``postgresql`` or ``sqlite``), built on first use."""
    insert = dialect_insert(dialect)
    item_insert = _item_insert(insert)
    added = item_insert.on_conflict_do_nothing(index_elements=_item_key()).returning(
        ITEMS.c.thread_id
    )
    touch = (
        update(THREADS)
        .values(updated_at=bindparam(NOW, type_=UTCDateTime()))
        .where(*_mine(THREADS))
    )
    if dialect == "postgresql":
        inserted = added.cte("inserted")
        added = touch.where(THREADS.c.id.in_(select(inserted.c.thread_id))).returning(THREADS.c.pk)
    saved = item_insert.on_conflict_do_update(
        index_elements=_item_key(),
        set_={
            name: item_insert.excluded[name]
            for name in ("type", "role", "content_text", "tool_calls", "data")
        },
    ).returning(ITEMS.c.pk)
    return StoreStatements(
        load_thread=select(THREADS.c.data).where(*_mine(THREADS)),
        save_thread=_thread_upsert(insert, dialect),
        add_item=added,
        touch_thread=touch,
        save_item=saved,
    )


def _item_key() -> list[Any]:
    return [ITEMS.c.user_id, ITEMS.c.thread_id, ITEMS.c.id]


def _item_insert(insert: Callable[[Table], Any]) -> Any:
    """``INSERT INTO thread_items SELECT <item> FROM threads WHERE <the caller's thread>``.

    Selecting the values from the caller's thread row makes "the thread is not yours" insert
    nothing, so both writers learn it from ``RETURNING`` instead of a foreign-key error.
    """
    source = select(
        THREADS.c.user_id,
        THREADS.c.id.label("thread_id"),
        *(_bound(ITEMS, name, item_parameter(name)).label(name) for name in ITEM_COLUMNS),
    ).where(*_mine(THREADS))
    return insert(ITEMS).from_select(["user_id", "thread_id", *ITEM_COLUMNS], source)


def _thread_upsert(insert: Callable[[Table], Any], dialect: str) -> Any:
    """The thread's upsert; a title the user chose is kept against a save that does not carry
    that mark itself (``PostgresStore.save_thread``)."""
    values = {name: _bound(THREADS, name, thread_parameter(name)) for name in THREAD_COLUMNS}
    statement = insert(THREADS).values(
        user_id=bindparam(OWNER, type_=THREADS.c.user_id.type),
        updated_at=bindparam(NOW, type_=UTCDateTime()),
        **values,
    )
    keep_users_title = _user_title_kept(statement.excluded.data)
    return statement.on_conflict_do_update(
        index_elements=[THREADS.c.user_id, THREADS.c.id],
        set_={
            "title": case((keep_users_title, THREADS.c.title), else_=statement.excluded.title),
            "data": case(
                (keep_users_title, _with_stored_title(statement.excluded.data, dialect)),
                else_=statement.excluded.data,
            ),
            "updated_at": statement.excluded.updated_at,
        },
    )


def _user_title_kept(incoming: Any) -> Any:
    """SQL: the stored title is the user's and the incoming document does not say so."""
    path = ("metadata", TITLE_SOURCE_KEY)
    given = func.coalesce(incoming[path].as_string(), "")
    return and_(THREADS.c.data[path].as_string() == "user", given != "user")


def _with_stored_title(incoming: Any, dialect: str) -> Any:
    """SQL: the incoming document with the stored row's title and metadata."""
    if dialect == "postgresql":
        kept = func.jsonb_build_object(
            "title", THREADS.c.data["title"], "metadata", THREADS.c.data["metadata"]
        )
        return incoming.op("||", return_type=THREADS.c.data.type)(kept)
    kept = func.json_object(
        "title",
        func.json_extract(THREADS.c.data, "$.title"),
        "metadata",
        func.json(func.json_extract(THREADS.c.data, "$.metadata")),
    )
    return func.json_patch(incoming, kept)


@functools.cache
def page_statement(
    table: Table, scope: tuple[str, ...], order: Order, with_cursor: bool
) -> Select[Any]:
    """Rows ``(id, data)`` of ``table`` whose ``scope`` columns equal the parameters of the same
    names, keyset-paged on ``(created_at, pk)`` after the row ``page_cursor`` names (joined in
    the same statement, scoped like the page, so an unknown or foreign cursor matches nothing),
    at most ``page_limit`` rows. ``data`` comes as JSON text: pydantic validates a page from
    JSON text in one pass, where decoding each row to Python objects first costs as much again."""
    statement: Select[Any] = select(table.c.id, _json_text(table)).where(
        *(table.c[name] == bindparam(name) for name in scope)
    )
    if with_cursor:
        cursor = table.alias("page_cursor")
        position = tuple_(table.c.created_at, table.c.pk)
        cursor_position = tuple_(cursor.c.created_at, cursor.c.pk)
        statement = statement.join(
            cursor,
            and_(
                *(cursor.c[name] == bindparam(name) for name in scope),
                cursor.c.id == bindparam(CURSOR),
            ),
        ).where(position > cursor_position if order == "asc" else position < cursor_position)
    sort = (table.c.created_at, table.c.pk)
    return statement.order_by(
        *(column.asc() if order == "asc" else column.desc() for column in sort)
    ).limit(bindparam(PAGE_LIMIT))


THREAD_ROW = 0
ITEM_ROW = 1


@functools.cache
def thread_with_newest_statement() -> Any:
    """The caller's thread (``OWNER``, ``THREAD``) and its newest ``page_limit`` items in one
    statement: rows ``(kind, id, data)``, the thread's first (:data:`THREAD_ROW`; none when it is
    missing or foreign), then its items newest first (:data:`ITEM_ROW`), ``data`` as JSON text.
    The same on both dialects: a ``UNION ALL``, the items' page a subquery of its own."""
    thread = _kind_rows(THREADS, THREAD_ROW).where(*_mine(THREADS))
    newest = (
        _kind_rows(ITEMS, ITEM_ROW)
        .where(ITEMS.c.user_id == bindparam(OWNER), ITEMS.c.thread_id == bindparam(THREAD))
        .order_by(ITEMS.c.created_at.desc(), ITEMS.c.pk.desc())
        .limit(bindparam(PAGE_LIMIT))
        .subquery("newest")
    )
    both = union_all(thread, select(newest))
    rows = both.selected_columns
    return both.order_by(rows.kind, rows.created_at.desc(), rows.pk.desc())


def _kind_rows(table: Table, kind: int) -> Select[Any]:
    """Rows ``(kind, id, data, created_at, pk)`` of ``table``, ``kind`` a constant."""
    kind_column: Any = literal_column(str(kind)).label("kind")
    return select(kind_column, table.c.id, _json_text(table), table.c.created_at, table.c.pk)


def _json_text(table: Table) -> Any:
    """``table``'s ``data`` as JSON text, named ``data``."""
    return cast(table.c.data, Text).label("data")
