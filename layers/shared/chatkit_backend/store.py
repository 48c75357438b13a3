"""The ChatKit ``Store`` and ``AttachmentStore`` over PostgreSQL (and embedded SQLite, same code).

Every statement filters on the caller's ``user_id`` and every upsert's conflict key starts with
it, so missing and foreign rows look alike (``NotFoundError``, a no-op delete, an empty page).
``data`` holds the SDK's JSON and loads go through its pydantic types (a loaded object equals the
saved one); plain columns are derived on every write. Pages are keyset pages on
``(created_at, pk)``; each call is one short transaction, nothing is held between calls.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Concatenate, Literal, ParamSpec, TypeVar

from chatkit.store import AttachmentStore, NotFoundError, Store, StoreItemType
from chatkit.types import (
    Attachment,
    AttachmentCreateParams,
    AttachmentUploadDescriptor,
    FeedbackKind,
    FileAttachment,
    ImageAttachment,
    Page,
    ThreadItem,
    ThreadMetadata,
    UserMessageItem,
)
from pydantic import AnyUrl, TypeAdapter
from sqlalchemy import (
    Row,
    Select,
    Table,
    delete,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from .attachments import AttachmentFiles, StoredAttachment
from .caller import Caller
from .db import Database
from .errors import BadRequest
from .held_write import HELD_WRITE, flush_held_write
from .ids import new_id
from .item_projection import project_item
from .paging import MAX_PAGE_SIZE
from .store_statements import (
    CURSOR,
    NOW,
    OWNER,
    PAGE_LIMIT,
    THREAD,
    THREAD_ROW,
    dialect_insert,
    item_parameter,
    page_statement,
    store_statements,
    thread_parameter,
    thread_with_newest_statement,
)
from .tables import ATTACHMENTS, ITEMS, THREADS, utcnow

ITEM_ADAPTER: TypeAdapter[ThreadItem] = TypeAdapter(ThreadItem)
ITEMS_ADAPTER: TypeAdapter[list[ThreadItem]] = TypeAdapter(list[ThreadItem])
"""A page's items in one validation (each call of an adapter has a cost of its own)."""
THREADS_ADAPTER: TypeAdapter[list[ThreadMetadata]] = TypeAdapter(list[ThreadMetadata])
ATTACHMENT_ADAPTER: TypeAdapter[Attachment] = TypeAdapter(Attachment)

PREVIEW_URL_SCHEME = "attachment"
"""Stored ``preview_url`` of image attachments: ``attachment://<id>``, a stable name; every load
replaces it with a fresh signed URL (:class:`~chatkit_backend.attachments.AttachmentFiles`)."""


Order = Literal["asc", "desc"]


@dataclass(frozen=True, slots=True)
class NewestItems:
    """A thread's newest items, newest first, as the running turn has just read them."""

    user_id: str
    thread_id: str
    items: Sequence[ThreadItem]
    has_more: bool
    """Whether the thread holds older items than these."""

    def page(self, limit: int) -> Page[ThreadItem]:
        data = list(self.items[:limit])
        has_more = len(self.items) > limit or self.has_more
        return Page(data=data, has_more=has_more, after=data[-1].id if has_more else None)


_NEWEST: ContextVar[NewestItems | None] = ContextVar("newest_items", default=None)
"""What :meth:`PostgresStore.remember_newest` holds for the current turn (its task)."""


def _forget_newest(thread_id: str) -> None:
    """A write to the thread: what was remembered of it is no longer its newest items."""
    newest = _NEWEST.get()
    if newest is not None and newest.thread_id == thread_id:
        _NEWEST.set(None)


@dataclass(frozen=True, slots=True)
class NewestWanted:
    """A turn's request to read its thread's newest items with the thread itself (the first
    read of its turn), in one statement: :meth:`PostgresStore.load_thread` fills ``page``."""

    user_id: str
    thread_id: str
    limit: int
    page: asyncio.Future[Page[ThreadItem]]

    def cancel(self) -> None:
        """Drop the page if nobody took it (the turn was refused, failed, or ended)."""
        self.page.cancel()

    def matches(self, thread_id: str, context: Caller) -> bool:
        return (
            self.user_id == context.user_id and self.thread_id == thread_id and not self.page.done()
        )


WANTED_NEWEST: ContextVar[NewestWanted | None] = ContextVar("wanted_newest", default=None)
"""The current turn's :class:`NewestWanted`, if any (set before its tasks are created)."""


ADMISSION: ContextVar[asyncio.Future[None] | None] = ContextVar("turn_admission", default=None)
"""The admission of the turn the current task runs (the chat function's per-user limits): its
reads go ahead while it is decided, its writes wait for it (:func:`_after_admission`), as does
the start of its answer (the chat function's READY point, :func:`admitted`), and a refusal it
raises fails them."""


async def admitted() -> None:
    """Wait for the current turn's :data:`ADMISSION` (at once when there is none)."""
    admission = ADMISSION.get()
    if admission is not None:
        await asyncio.shield(admission)


_Self = TypeVar("_Self")
_P = ParamSpec("_P")
_R = TypeVar("_R")


def _after_admission(
    write: Callable[Concatenate[_Self, _P], Coroutine[Any, Any, _R]],
) -> Callable[Concatenate[_Self, _P], Coroutine[Any, Any, _R]]:
    """A write that waits for the current turn's admission first (see :data:`ADMISSION`), and
    for the turn's held message insert (:mod:`~chatkit_backend.held_write`): writes keep their
    order."""

    @functools.wraps(write)
    async def gated(self: _Self, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        await admitted()
        await flush_held_write()
        return await write(self, *args, **kwargs)

    return gated


class PostgresStore(Store[Caller], AttachmentStore[Caller]):
    """ChatKit ``Store`` and ``AttachmentStore`` over :class:`~chatkit_backend.db.Database`."""

    def __init__(self, database: Database, files: AttachmentFiles | None = None) -> None:
        self.database = database
        self.files = files
        """Attachment bytes; without them attachments are metadata only (store tests, tools)."""
        self._statements = store_statements(database.dialect)
        self._insert = dialect_insert(database.dialect)

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

    @_after_admission
    async def save_thread(self, thread: ThreadMetadata, context: Caller) -> None:
        """Upsert the thread's metadata in one statement; a ``Thread``'s items are never written.

        ``created_at`` (the paging key) is fixed by the first save; later saves replace the JSON
        and the title and bump ``updated_at``. A title the user chose (:func:`set_by_user`) is
        kept against a save that does not carry that mark itself: a turn's copy of the thread,
        read before a rename, must not put the old or a generated title back. The statement
        decides that against the stored row, so no read (and no transaction) is needed.
        """
        parameters = {
            OWNER: context.user_id,
            NOW: utcnow(),
            thread_parameter("id"): thread.id,
            thread_parameter("title"): thread.title,
            thread_parameter("created_at"): thread.created_at,
            thread_parameter("data"): thread.model_dump(mode="json", exclude={"items"}),
        }
        async with self.database.autocommit() as session:
            await session.execute(self._statements.save_thread, parameters)

    async def load_thread(self, thread_id: str, context: Caller) -> ThreadMetadata:
        """The thread's metadata (``ThreadMetadata``, items are paged separately); with the
        newest items too when the turn wants them (:data:`WANTED_NEWEST`), in one statement."""
        wanted = WANTED_NEWEST.get()
        if wanted is not None and wanted.matches(thread_id, context):
            try:
                thread, page = await self._thread_with_newest(thread_id, wanted.limit, context)
            except BaseException:
                wanted.page.cancel()  # the turn fails with this error; nobody takes the page
                raise
            wanted.page.set_result(page)
            return thread
        data = await self._data(
            self._statements.load_thread,
            f"Thread {thread_id} not found",
            {OWNER: context.user_id, THREAD: thread_id},
        )
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
            data=THREADS_ADAPTER.validate_json(_json_array(rows)),
            has_more=has_more,
            after=rows[-1].id if has_more else None,
        )

    async def delete_thread(self, thread_id: str, context: Caller) -> None:
        """The thread's attachment bytes first (a failure leaves the thread to retry on), then
        one statement: the foreign keys cascade to the items and attachments. Missing or
        foreign: no-op."""
        _forget_newest(thread_id)
        if self.files is not None:
            await self.files.delete_thread(self.database, context.user_id, thread_id)
        statement = delete(THREADS).where(
            THREADS.c.user_id == context.user_id, THREADS.c.id == thread_id
        )
        async with self.database.session() as session:
            await session.execute(statement)

    # --- items ----------------------------------------------------------------------------------

    @_after_admission
    async def add_thread_item(self, thread_id: str, item: ThreadItem, context: Caller) -> None:
        """Insert a new item and bump the thread's ``updated_at``.

        Idempotent: adding an id that is already there changes nothing. It must not update,
        because the SDK and the chat function retry adds (e.g. after a cancelled stream), and a
        retried add of an old version would clobber a later ``save_item`` of the same item.

        The insert selects the caller's thread row, so a missing or foreign thread inserts nothing
        instead of tripping the foreign key; telling that apart from a duplicate takes one extra
        query on that (rare) path only. Usual cost on PostgreSQL: one statement (the bump is an
        ``UPDATE`` over the insert's ``RETURNING``), committed on its own; elsewhere two.

        A new message of a turn that holds its insert (:data:`~chatkit_backend.held_write.
        HELD_WRITE`) is handed over and written when the turn calls the model.
        """
        _forget_newest(thread_id)
        held = HELD_WRITE.get()
        insert = functools.partial(self._insert_item, thread_id, item, context)
        if isinstance(item, UserMessageItem) and held is not None and held.hold(insert):
            return
        await insert()

    async def _insert_item(self, thread_id: str, item: ThreadItem, context: Caller) -> None:
        """:meth:`add_thread_item`'s statements."""
        parameters = self._item_parameters(thread_id, item, context)
        if self.database.dialect == "postgresql":
            async with self.database.autocommit() as session:
                result = await session.execute(self._statements.add_item, parameters)
                if result.first() is not None:
                    return
        else:
            async with self.database.session() as session:
                inserted = await session.execute(self._statements.add_item, parameters)
                if inserted.first() is not None:
                    await session.execute(self._statements.touch_thread, parameters)
                    return
        async with self.database.autocommit() as session:
            thread_exists = (
                await session.execute(
                    select(THREADS.c.pk).where(
                        THREADS.c.user_id == context.user_id, THREADS.c.id == thread_id
                    )
                )
            ).first() is not None
        if not thread_exists:
            raise NotFoundError(f"Thread {thread_id} not found")

    @_after_admission
    async def save_item(self, thread_id: str, item: ThreadItem, context: Caller) -> None:
        """Upsert an item (JSON and projected columns); one statement.

        ``created_at`` and ``pk`` keep the item's place in the thread; ``feedback`` is kept too.
        A missing or foreign thread raises ``NotFoundError`` (nothing is written).
        """
        _forget_newest(thread_id)
        parameters = self._item_parameters(thread_id, item, context)
        async with self.database.autocommit() as session:
            written = (
                await session.execute(self._statements.save_item, parameters)
            ).first() is not None
        if not written:
            raise NotFoundError(f"Thread {thread_id} not found")

    async def load_item(self, thread_id: str, item_id: str, context: Caller) -> ThreadItem:
        statement = select(ITEMS.c.data).where(
            ITEMS.c.user_id == context.user_id,
            ITEMS.c.thread_id == thread_id,
            ITEMS.c.id == item_id,
        )
        data = await self._data(statement, f"Item {item_id} not found")
        return self._shown_item(ITEM_ADAPTER.validate_python(data), context)

    def remember_newest(self, newest: NewestItems) -> None:
        """Let the next read of ``newest``'s items in this turn's task be answered from it.

        The turn reads its history just before the ChatKit SDK reads the thread's newest items
        (to continue an open workflow): the same rows, one round trip apart. Remembered for one
        such read only, and forgotten as soon as this task writes to the thread.
        """
        _NEWEST.set(newest)

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
        threads it has just loaded, and an empty answer leaks nothing). The newest items the
        turn remembered (:meth:`remember_newest`) answer one request for them without a query.
        """
        newest = _NEWEST.get()
        if (
            newest is not None
            and newest.user_id == context.user_id
            and newest.thread_id == thread_id
            and after is None
            and order == "desc"
            and limit <= len(newest.items)
        ):
            _NEWEST.set(None)
            return newest.page(limit)
        rows, has_more = await self._page(
            ITEMS, {"user_id": context.user_id, "thread_id": thread_id}, after, limit, order
        )
        return self._items_page(rows, has_more, context)

    @_after_admission
    async def delete_thread_item(self, thread_id: str, item_id: str, context: Caller) -> None:
        """Missing or foreign: no-op."""
        _forget_newest(thread_id)
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
        """A new attachment (an image for ``image/*``) with its upload instructions.

        Type and size are checked first (400/413: no URL is issued for what would be refused).
        ``upload_descriptor`` is a signed ``PUT`` of exactly the declared size and type; an
        image's ``preview_url`` a signed ``GET`` of the same bytes. The SDK saves the answer
        (:meth:`save_attachment` keeps neither URL).
        """
        if self.files is None:
            raise BadRequest("Attachments are not enabled on this server")
        mime_type = self.files.policy.check_new(input.name, input.size, input.mime_type)
        attachment_id = self.generate_attachment_id(mime_type, context)
        target = self.files.upload_target(context.user_id, attachment_id, mime_type, input.size)
        fields: dict[str, Any] = {
            "id": attachment_id,
            "name": input.name,
            "mime_type": mime_type,
            "upload_descriptor": AttachmentUploadDescriptor(
                url=AnyUrl(target.url), method=target.method, headers=target.headers
            ),
            "metadata": {"size": input.size},
        }
        if mime_type.startswith("image/"):
            preview = self.files.preview_url(context.user_id, attachment_id, mime_type, False)
            return ImageAttachment(**fields, preview_url=AnyUrl(preview))
        return FileAttachment(**fields)

    @_after_admission
    async def save_attachment(self, attachment: Attachment, context: Caller) -> None:
        """Upsert the attachment's metadata (the SDK re-saves it once it belongs to a thread).

        Stored without its upload instructions and with the stable preview name (URLs expire;
        loads sign fresh ones). An attachment bound to a thread that is missing or not the
        caller's raises ``NotFoundError``; the row is deleted with its thread (cascade).
        """
        statement = self._insert(ATTACHMENTS).values(
            user_id=context.user_id,
            id=attachment.id,
            thread_id=attachment.thread_id,
            created_at=utcnow(),
            data=self._kept(attachment).model_dump(mode="json"),
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
        statement = select(ATTACHMENTS.c.data, ATTACHMENTS.c.stored_at).where(
            ATTACHMENTS.c.user_id == context.user_id, ATTACHMENTS.c.id == attachment_id
        )
        async with self.database.session() as session:
            row = (await session.execute(statement)).first()
        if row is None:
            raise NotFoundError(f"Attachment {attachment_id} not found")
        attachment = ATTACHMENT_ADAPTER.validate_python(row.data)
        return self._shown(attachment, context, stored=row.stored_at is not None)

    async def load_attachments(
        self, attachment_ids: Sequence[str], context: Caller
    ) -> dict[str, StoredAttachment]:
        """The caller's rows among ``attachment_ids``, by id (one statement; foreign and missing
        ids are simply absent)."""
        if not attachment_ids:
            return {}
        statement = select(
            ATTACHMENTS.c.id, ATTACHMENTS.c.thread_id, ATTACHMENTS.c.stored_at, ATTACHMENTS.c.data
        ).where(ATTACHMENTS.c.user_id == context.user_id, ATTACHMENTS.c.id.in_(attachment_ids))
        async with self.database.session() as session:
            rows = (await session.execute(statement)).all()
        return {
            row.id: StoredAttachment(row.id, row.thread_id, row.stored_at is not None, row.data)
            for row in rows
        }

    async def mark_stored(self, attachment_ids: Sequence[str], context: Caller) -> None:
        """Record that these attachments' bytes are in place (one statement)."""
        if not attachment_ids:
            return
        statement = (
            update(ATTACHMENTS)
            .where(
                ATTACHMENTS.c.user_id == context.user_id,
                ATTACHMENTS.c.id.in_(list(attachment_ids)),
                ATTACHMENTS.c.stored_at.is_(None),
            )
            .values(stored_at=utcnow())
        )
        async with self.database.session() as session:
            await session.execute(statement)

    async def delete_attachment(self, attachment_id: str, context: Caller) -> None:
        """The row, then its bytes. Missing or foreign: no-op (the SDK calls this twice per
        ``attachments.delete``, as attachment store and as store: only the first finds a row)."""
        statement = (
            delete(ATTACHMENTS)
            .where(ATTACHMENTS.c.user_id == context.user_id, ATTACHMENTS.c.id == attachment_id)
            .returning(ATTACHMENTS.c.id)
        )
        async with self.database.session() as session:
            deleted = (await session.execute(statement)).first() is not None
        if deleted and self.files is not None:
            await self.files.delete_attachments(context.user_id, [attachment_id])

    # --- attachment URLs ------------------------------------------------------------------------
    # With ``files``, URLs are this store's to sign: what is kept has none (they expire), what is
    # loaded gets fresh ones. Without, attachments are kept and loaded exactly as given.

    def _kept(self, attachment: Attachment) -> Attachment:
        return attachment if self.files is None else _stored_attachment(attachment)

    def _kept_item(self, item: ThreadItem) -> ThreadItem:
        return item if self.files is None else _stored_item(item)

    def _shown(self, attachment: Attachment, context: Caller, *, stored: bool) -> Attachment:
        """An attachment as a client sees it: an image's preview is a fresh signed URL."""
        if self.files is None or not isinstance(attachment, ImageAttachment):
            return attachment
        url = self.files.preview_url(context.user_id, attachment.id, attachment.mime_type, stored)
        return attachment.model_copy(update={"preview_url": AnyUrl(url)})

    def _shown_item(self, item: ThreadItem, context: Caller) -> ThreadItem:
        """A loaded item with fresh preview URLs (a message's attachments are always stored)."""
        if self.files is None or not isinstance(item, UserMessageItem) or not item.attachments:
            return item
        shown = [self._shown(attachment, context, stored=True) for attachment in item.attachments]
        return item.model_copy(update={"attachments": shown})

    # --- helpers --------------------------------------------------------------------------------

    def _item_parameters(self, thread_id: str, item: ThreadItem, context: Caller) -> dict[str, Any]:
        """The parameters of an item write (:mod:`.store_statements`): the item's JSON and the
        columns derived from it, its owner and thread."""
        projection = project_item(item)
        values: dict[str, Any] = {
            "id": item.id,
            "type": item.type,
            "role": projection.role,
            "content_text": projection.content_text,
            "tool_calls": projection.tool_calls,
            "created_at": item.created_at,
            "data": self._kept_item(item).model_dump(mode="json"),
        }
        return {
            OWNER: context.user_id,
            THREAD: thread_id,
            NOW: utcnow(),
            **{item_parameter(name): value for name, value in values.items()},
        }

    async def _thread_with_newest(
        self, thread_id: str, limit: int, context: Caller
    ) -> tuple[ThreadMetadata, Page[ThreadItem]]:
        """:meth:`load_thread` and :meth:`load_thread_items` (newest first, no cursor) at once."""
        limit = _page_size(limit)
        parameters = {OWNER: context.user_id, THREAD: thread_id, PAGE_LIMIT: limit + 1}
        async with self.database.autocommit() as session:
            rows = (await session.execute(thread_with_newest_statement(), parameters)).all()
        if not rows or rows[0].kind != THREAD_ROW:
            raise NotFoundError(f"Thread {thread_id} not found")
        thread = ThreadMetadata.model_validate_json(rows[0].data)
        return thread, self._items_page(*_split(rows[1:], limit), context)

    def _items_page(
        self, rows: Sequence[Row[Any]], has_more: bool, context: Caller
    ) -> Page[ThreadItem]:
        """A page of items from its rows ``(id, data)``."""
        items = ITEMS_ADAPTER.validate_json(_json_array(rows))
        return Page(
            data=[self._shown_item(item, context) for item in items],
            has_more=has_more,
            after=rows[-1].id if has_more else None,
        )

    async def _data(
        self, statement: Select[Any], missing: str, parameters: Mapping[str, Any] | None = None
    ) -> Any:
        """The ``data`` column of the one row ``statement`` selects; ``NotFoundError`` if none."""
        async with self.database.autocommit() as session:
            data = (await session.execute(statement, parameters)).scalar_one_or_none()
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
        """Rows ``(id, data)`` of ``table`` within ``scope``, keyset-paged on ``(created_at, pk)``,
        and whether another page follows.

        The cursor row is joined in the same statement (scoped like the page itself), so an
        unknown or foreign cursor matches nothing and the page is empty. ``limit`` is clamped
        (:func:`_page_size`).
        """
        limit = _page_size(limit)
        statement = page_statement(table, tuple(scope), _direction(order), after is not None)
        parameters = {**scope, CURSOR: after, PAGE_LIMIT: limit + 1}
        async with self.database.autocommit() as session:
            rows = (await session.execute(statement, parameters)).all()
        return _split(rows, limit)


def _page_size(limit: int) -> int:
    """``limit`` within ``1..MAX_PAGE_SIZE``: a page is never empty while rows remain (a client
    looping on ``has_more`` always advances) and never larger than the bound."""
    return min(max(limit, 1), MAX_PAGE_SIZE)


def _split(rows: Sequence[Row[Any]], limit: int) -> tuple[Sequence[Row[Any]], bool]:
    """A page read one row past ``limit``: its rows, and whether another page follows (the
    extra row only tells that)."""
    return rows[:limit], len(rows) > limit


def _json_array(rows: Sequence[Row[Any]]) -> str:
    """The ``data`` (JSON text) of a page's rows as one JSON array."""
    return "[" + ",".join(row.data for row in rows) + "]"


def _stored_attachment(attachment: Attachment) -> Attachment:
    """What is kept of an attachment: no upload instructions, the stable preview name."""
    update: dict[str, Any] = {"upload_descriptor": None}
    if isinstance(attachment, ImageAttachment):
        update["preview_url"] = AnyUrl(f"{PREVIEW_URL_SCHEME}://{attachment.id}")
    return attachment.model_copy(update=update)


def _stored_item(item: ThreadItem) -> ThreadItem:
    if not isinstance(item, UserMessageItem) or not item.attachments:
        return item
    return item.model_copy(
        update={"attachments": [_stored_attachment(each) for each in item.attachments]}
    )


def _direction(order: str) -> Order:
    if order not in ("asc", "desc"):
        raise ValueError(f"order must be 'asc' or 'desc', not {order!r}")
    return "asc" if order == "asc" else "desc"


__all__ = ["ATTACHMENTS", "ITEMS", "ITEM_ADAPTER", "THREADS", "PostgresStore"]
