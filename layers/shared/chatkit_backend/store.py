"""The ChatKit ``Store`` and ``AttachmentStore`` over PostgreSQL (and embedded SQLite, same code).

Every statement filters on the caller's ``user_id`` and every upsert's conflict key starts with
it, so missing and foreign rows look alike (``NotFoundError``, a no-op delete, an empty page).
``data`` holds the SDK's JSON and loads go through its pydantic types (a loaded object equals the
saved one); plain columns are derived on every write. Pages are keyset pages on
``(created_at, pk)``; each call is one short transaction, nothing is held between calls.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from chatkit.store import AttachmentStore, NotFoundError, Store, StoreItemType
from chatkit.types import (
    Attachment,
    AttachmentCreateParams,
    FeedbackKind,
    FileAttachment,
    ImageAttachment,
    Page,
    ThreadItem,
    ThreadMetadata,
)
from pydantic import AnyUrl, TypeAdapter
from sqlalchemy import (
    ColumnElement,
    Row,
    Select,
    Table,
    and_,
    cast,
    delete,
    literal,
    null,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from .caller import Caller
from .db import Database
from .ids import new_id
from .item_projection import project_item
from .paging import MAX_PAGE_SIZE, fetch_page
from .tables import ATTACHMENTS, ITEMS, THREADS, utcnow

ITEM_ADAPTER: TypeAdapter[ThreadItem] = TypeAdapter(ThreadItem)
ATTACHMENT_ADAPTER: TypeAdapter[Attachment] = TypeAdapter(Attachment)

PREVIEW_URL_SCHEME = "attachment"

"""``preview_url`` of created image attachments: ``attachment://<id>``, a stable name, not a
location. This backend keeps attachment metadata only; serving the bytes is out of scope."""

Order = Literal["asc", "desc"]


class PostgresStore(Store[Caller], AttachmentStore[Caller]):
    """ChatKit ``Store`` and ``AttachmentStore`` over :class:`~chatkit_backend.db.Database`."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._insert = pg_insert if database.dialect == "postgresql" else sqlite_insert

    # --- ids ------------------------------------------------------------------------------------

    def generate_thread_id(self, context: Caller) -> str:
        return new_id("thread")

    def generate_item_id(
        self, item_type: StoreItemType, thread: ThreadMetadata, context: Caller
    ) -> str:
        return new_id(item_type)

    def generate_attachment_id(self, mime_type: str, context: Caller) -> str:
        return new_id("attachment")

    # --- threads --------------------------------------------------------------------------------

    async def save_thread(self, thread: ThreadMetadata, context: Caller) -> None:
        """Upsert the thread's metadata; a ``Thread``'s items are never written here.

        ``created_at`` (the paging key) is fixed by the first save; later saves replace the JSON
        and the title and bump ``updated_at``.
        """
        now = utcnow()
        statement = self._insert(THREADS).values(
            user_id=context.user_id,
            id=thread.id,
            title=thread.title,
            created_at=thread.created_at,
            updated_at=now,
            data=thread.model_dump(mode="json", exclude={"items"}),
        )
        statement = statement.on_conflict_do_update(
            index_elements=[THREADS.c.user_id, THREADS.c.id],
            set_={
                "title": statement.excluded.title,
                "data": statement.excluded.data,
                "updated_at": statement.excluded.updated_at,
            },
        )
        async with self.database.session() as session:
            await session.execute(statement)

    async def load_thread(self, thread_id: str, context: Caller) -> ThreadMetadata:
        """The thread's metadata (``ThreadMetadata``, items are paged separately)."""
        statement = select(THREADS.c.data).where(
            THREADS.c.user_id == context.user_id, THREADS.c.id == thread_id
        )
        data = await self._data(statement, f"Thread {thread_id} not found")
        return ThreadMetadata.model_validate(data)

    async def load_threads(
        self, limit: int, after: str | None, order: str, context: Caller
    ) -> Page[ThreadMetadata]:
        """A page of the caller's threads by creation time.

        ``after`` is an exclusive cursor: the id of a thread of the caller's. An unknown or foreign
        cursor yields an empty page (``has_more`` False) rather than an error or the first page:
        the cursor names no position in this user's list, so there is nothing "after" it.
        """
        rows, has_more = await self._page(
            THREADS, {"user_id": context.user_id}, after, limit, order
        )
        return Page(
            data=[ThreadMetadata.model_validate(row.data) for row in rows],
            has_more=has_more,
            after=rows[-1].id if has_more else None,
        )

    async def delete_thread(self, thread_id: str, context: Caller) -> None:
        """One statement: the foreign key cascades to the items. Missing or foreign: no-op."""
        statement = delete(THREADS).where(
            THREADS.c.user_id == context.user_id, THREADS.c.id == thread_id
        )
        async with self.database.session() as session:
            await session.execute(statement)

    # --- items ----------------------------------------------------------------------------------

    async def add_thread_item(self, thread_id: str, item: ThreadItem, context: Caller) -> None:
        """Insert a new item and bump the thread's ``updated_at``.

        Idempotent: adding an id that is already there changes nothing. It must not update,
        because the SDK and the chat function retry adds (e.g. after a cancelled stream), and a
        retried add of an old version would clobber a later ``save_item`` of the same item.

        The insert selects the caller's thread row, so a missing or foreign thread inserts nothing
        instead of tripping the foreign key; telling that apart from a duplicate takes one extra
        query on that (rare) path only. Usual cost: two statements.
        """
        statement = (
            self._item_insert(thread_id, item, context)
            .on_conflict_do_nothing(index_elements=_item_key())
            .returning(ITEMS.c.pk)
        )
        async with self.database.session() as session:
            inserted = (await session.execute(statement)).first() is not None
            if inserted:
                await session.execute(
                    update(THREADS)
                    .where(THREADS.c.user_id == context.user_id, THREADS.c.id == thread_id)
                    .values(updated_at=utcnow())
                )
                return
            thread_exists = (
                await session.execute(
                    select(THREADS.c.pk).where(
                        THREADS.c.user_id == context.user_id, THREADS.c.id == thread_id
                    )
                )
            ).first() is not None
        if not thread_exists:
            raise NotFoundError(f"Thread {thread_id} not found")

    async def save_item(self, thread_id: str, item: ThreadItem, context: Caller) -> None:
        """Upsert an item (JSON and projected columns); one statement.

        ``created_at`` and ``pk`` keep the item's place in the thread; ``feedback`` is kept too.
        A missing or foreign thread raises ``NotFoundError`` (nothing is written).
        """
        statement = self._item_insert(thread_id, item, context)
        statement = statement.on_conflict_do_update(
            index_elements=_item_key(),
            set_={
                name: statement.excluded[name]
                for name in ("type", "role", "content_text", "tool_calls", "data")
            },
        ).returning(ITEMS.c.pk)
        async with self.database.session() as session:
            written = (await session.execute(statement)).first() is not None
        if not written:
            raise NotFoundError(f"Thread {thread_id} not found")

    async def load_item(self, thread_id: str, item_id: str, context: Caller) -> ThreadItem:
        statement = select(ITEMS.c.data).where(
            ITEMS.c.user_id == context.user_id,
            ITEMS.c.thread_id == thread_id,
            ITEMS.c.id == item_id,
        )
        data = await self._data(statement, f"Item {item_id} not found")
        return ITEM_ADAPTER.validate_python(data)

    async def load_thread_items(
        self,
        thread_id: str,
        after: str | None,
        limit: int,
        order: str,
        context: Caller,
    ) -> Page[ThreadItem]:
        """A page of a thread's items; same cursor rules as :meth:`load_threads`.

        A missing or foreign thread is an empty page, not an error (the SDK lists items of
        threads it has just loaded, and an empty answer leaks nothing).
        """
        rows, has_more = await self._page(
            ITEMS, {"user_id": context.user_id, "thread_id": thread_id}, after, limit, order
        )
        return Page(
            data=[ITEM_ADAPTER.validate_python(row.data) for row in rows],
            has_more=has_more,
            after=rows[-1].id if has_more else None,
        )

    async def delete_thread_item(self, thread_id: str, item_id: str, context: Caller) -> None:
        """Missing or foreign: no-op."""
        statement = delete(ITEMS).where(
            ITEMS.c.user_id == context.user_id,
            ITEMS.c.thread_id == thread_id,
            ITEMS.c.id == item_id,
        )
        async with self.database.session() as session:
            await session.execute(statement)

    async def set_feedback(
        self,
        thread_id: str,
        item_ids: Sequence[str],
        kind: FeedbackKind,
        context: Caller,
    ) -> None:
        """Record the user's feedback on their items of one thread (one statement).

        Ids that are missing, foreign or of another thread are ignored, like ChatKit's own
        feedback request which answers ``{}`` whatever it was given.
        """
        if not item_ids:
            return
        statement = (
            update(ITEMS)
            .where(
                ITEMS.c.user_id == context.user_id,
                ITEMS.c.thread_id == thread_id,
                ITEMS.c.id.in_(list(item_ids)),
            )
            .values(feedback=kind)
        )
        async with self.database.session() as session:
            await session.execute(statement)

    # --- attachments ----------------------------------------------------------------------------

    async def create_attachment(self, input: AttachmentCreateParams, context: Caller) -> Attachment:
        """Create and persist the metadata of a new attachment (an image for ``image/*``).

        Only metadata is kept: ``upload_descriptor`` is None (there is no upload endpoint; the
        SDK treats None as "already uploaded"), the declared size goes into ``metadata``, and an
        image's ``preview_url`` is the stable ``attachment://<id>`` name.
        """
        attachment_id = self.generate_attachment_id(input.mime_type, context)
        fields: dict[str, Any] = {
            "id": attachment_id,
            "name": input.name,
            "mime_type": input.mime_type,
            "upload_descriptor": None,
            "metadata": {"size": input.size},
        }
        attachment: Attachment
        if input.mime_type.lower().startswith("image/"):
            attachment = ImageAttachment(
                **fields, preview_url=AnyUrl(f"{PREVIEW_URL_SCHEME}://{attachment_id}")
            )
        else:
            attachment = FileAttachment(**fields)
        await self.save_attachment(attachment, context)
        return attachment

    async def save_attachment(self, attachment: Attachment, context: Caller) -> None:
        """Upsert the attachment's metadata (the SDK re-saves it once it belongs to a thread).

        An attachment bound to a thread that is missing or not the caller's raises
        ``NotFoundError``; the metadata is deleted with its thread (foreign key cascade).
        """
        statement = self._insert(ATTACHMENTS).values(
            user_id=context.user_id,
            id=attachment.id,
            thread_id=attachment.thread_id,
            created_at=utcnow(),
            data=attachment.model_dump(mode="json"),
        )
        statement = statement.on_conflict_do_update(
            index_elements=[ATTACHMENTS.c.user_id, ATTACHMENTS.c.id],
            set_={"thread_id": statement.excluded.thread_id, "data": statement.excluded.data},
        )
        try:
            async with self.database.session() as session:
                await session.execute(statement)
        except IntegrityError as exc:  # the only constraint left: (user_id, thread_id) -> threads
            raise NotFoundError(f"Thread {attachment.thread_id} not found") from exc

    async def load_attachment(self, attachment_id: str, context: Caller) -> Attachment:
        statement = select(ATTACHMENTS.c.data).where(
            ATTACHMENTS.c.user_id == context.user_id, ATTACHMENTS.c.id == attachment_id
        )
        data = await self._data(statement, f"Attachment {attachment_id} not found")
        return ATTACHMENT_ADAPTER.validate_python(data)

    async def delete_attachment(self, attachment_id: str, context: Caller) -> None:
        """Missing or foreign: no-op."""
        statement = delete(ATTACHMENTS).where(
            ATTACHMENTS.c.user_id == context.user_id, ATTACHMENTS.c.id == attachment_id
        )
        async with self.database.session() as session:
            await session.execute(statement)

    # --- helpers --------------------------------------------------------------------------------

    def _item_insert(self, thread_id: str, item: ThreadItem, context: Caller) -> Any:
        """``INSERT INTO thread_items SELECT <item> FROM threads WHERE <the caller's thread>``.

        Selecting the values from the caller's thread row makes "the thread is not yours" insert
        nothing, so both writers learn it from ``RETURNING`` instead of a foreign-key error.
        """
        projection = project_item(item)
        values: dict[str, Any] = {
            "id": item.id,
            "type": item.type,
            "role": projection.role,
            "content_text": projection.content_text,
            "tool_calls": projection.tool_calls,
            "created_at": item.created_at,
            "data": item.model_dump(mode="json"),
        }
        source = select(
            THREADS.c.user_id,
            THREADS.c.id.label("thread_id"),
            *(_typed_value(ITEMS.c[name], value).label(name) for name, value in values.items()),
        ).where(THREADS.c.user_id == context.user_id, THREADS.c.id == thread_id)
        return self._insert(ITEMS).from_select(["user_id", "thread_id", *values], source)

    async def _data(self, statement: Select[Any], missing: str) -> Any:
        """The ``data`` column of the one row ``statement`` selects; ``NotFoundError`` if none."""
        async with self.database.session() as session:
            data = (await session.execute(statement)).scalar_one_or_none()
        if data is None:
            raise NotFoundError(missing)
        return data

    async def _page(
        self,
        table: Table,
        scope: Mapping[str, str],
        after: str | None,
        limit: int,
        order: str,
    ) -> tuple[Sequence[Row[Any]], bool]:
        """Rows ``(id, data)`` of ``table`` within ``scope``, keyset-paged on ``(created_at, pk)``.

        The cursor row is joined in the same statement (scoped like the page itself), so an
        unknown or foreign cursor matches nothing and the page is empty. ``limit`` is clamped to
        ``1..MAX_PAGE_SIZE``: a page is never empty while rows remain (a client looping on
        ``has_more`` always advances) and never larger than the bound.
        """
        direction = _direction(order)
        limit = min(max(limit, 1), MAX_PAGE_SIZE)
        statement: Select[Any] = select(table.c.id, table.c.data).where(*_scope(table, scope))
        if after is not None:
            cursor = table.alias("page_cursor")
            position = tuple_(table.c.created_at, table.c.pk)
            cursor_position = tuple_(cursor.c.created_at, cursor.c.pk)
            statement = statement.join(
                cursor, and_(*_scope(cursor, scope), cursor.c.id == after)
            ).where(
                position > cursor_position if direction == "asc" else position < cursor_position
            )
        sort = (table.c.created_at, table.c.pk)
        statement = statement.order_by(
            *(column.asc() if direction == "asc" else column.desc() for column in sort)
        )
        async with self.database.session() as session:
            return await fetch_page(session, statement, limit)


def _item_key() -> list[Any]:
    return [ITEMS.c.user_id, ITEMS.c.thread_id, ITEMS.c.id]


def _scope(table: Any, scope: Mapping[str, str]) -> list[ColumnElement[bool]]:
    return [table.c[name] == value for name, value in scope.items()]


def _typed_value(column: Any, value: Any) -> ColumnElement[Any]:
    """A bound value with the column's type; None is SQL NULL (not JSON ``null``)."""
    if value is None:
        return cast(null(), column.type)
    return literal(value, column.type)


def _direction(order: str) -> Order:
    if order not in ("asc", "desc"):
        raise ValueError(f"order must be 'asc' or 'desc', not {order!r}")
    return "asc" if order == "asc" else "desc"


__all__ = ["ATTACHMENTS", "ITEMS", "ITEM_ADAPTER", "THREADS", "PostgresStore"]
