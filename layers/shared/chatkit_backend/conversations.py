"""The REST view of conversations: ChatKit threads and their messages as plain JSON.

A conversation *is* a ChatKit thread (same ``threads`` row and JSON); a message is a thread item
whose projected ``role`` column is set. Writes that the ChatKit store already knows how to do
(create, rename, delete) go through :class:`~chatkit_backend.store.PostgresStore` so the two
protocols can never disagree on what a thread looks like. Reads are this module's own queries,
because the REST view needs an order the store does not offer (most recently *updated* first)
and only the projected plain columns, never the item JSON.

Paging is keyset ("cursor") paging on the indexes the schema provides:

* conversations: ``(user_id, updated_at, pk)``, newest first, ``pk`` breaking ties;
* messages: ``(user_id, thread_id, created_at, pk)``, oldest first.

A cursor is the ``(timestamp, pk)`` of the last row returned, so the next page is one index range
scan however deep it is; ``offset`` paging of conversations is kept for the original API and costs
a scan of every skipped row.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, cast

from chatkit.store import NotFoundError
from chatkit.types import ThreadMetadata
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import Row, Select, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from .caller import Caller
from .db import Database
from .errors import BadRequest, NotFound
from .input_checks import reject_nul
from .item_projection import Role
from .store import ITEMS, THREADS, PostgresStore

MAX_PAGE_SIZE = 100
DEFAULT_CONVERSATIONS_PAGE = 50
DEFAULT_MESSAGES_PAGE = 100
MAX_TITLE_CHARS = 200
CONVERSATION_NOT_FOUND = "Conversation not found"

Title = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TITLE_CHARS),
    AfterValidator(reject_nul),
]
"""A conversation title: surrounding whitespace trimmed, then 1..200 characters, no NUL."""


# --- wire shapes -------------------------------------------------------------------------------


class Conversation(BaseModel):
    """One conversation as listed: no messages."""

    id: str
    title: str | None
    created_at: datetime
    updated_at: datetime


class ToolCall(BaseModel):
    """A server or client tool call, as projected by the store from the thread item."""

    id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    output: Any = None
    error: str | None = Field(default=None, exclude_if=lambda value: value is None)


class Message(BaseModel):
    """One message; ``tool_calls`` is present only on ``role="tool"`` messages."""

    id: str
    role: Role
    content: str
    created_at: datetime
    tool_calls: list[ToolCall] | None = Field(default=None, exclude_if=lambda value: value is None)


class ConversationPage(BaseModel):
    conversations: list[Conversation]
    next_cursor: str | None = Field(
        description="Pass as `after` to get the next page; null on the last page."
    )


class MessagePage(BaseModel):
    messages: list[Message]
    next_cursor: str | None = Field(
        description="Pass as `after` to get the next page; null on the last page."
    )


class ConversationWithMessages(Conversation):
    """A conversation with the first page of its messages, oldest first."""

    messages: list[Message]
    next_cursor: str | None = Field(
        description="More messages: pass as `after` to the messages route; null when complete."
    )


class CreateConversation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Title | None = None


class RenameConversation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Title


class DeletedConversation(BaseModel):
    status: Literal["deleted"] = "deleted"
    id: str


# --- cursors -----------------------------------------------------------------------------------

CursorKind = Literal["conversations", "messages"]
MAX_CURSOR_CHARS = 200
"""Real cursors are under 100 characters; longer input is refused before it is parsed."""
MAX_PK = 2**63
"""``pk`` is a BIGINT: a larger value would fail in the database instead of as a bad cursor."""


def encode_cursor(kind: CursorKind, at: datetime, pk: int) -> str:
    """An opaque, URL-safe token for the position just after ``(at, pk)``.

    The kind is inside so a messages cursor given to the conversations route is refused instead
    of silently paging from a meaningless position. The token is not signed: it only positions a
    query that is scoped to the caller anyway, so a forged one reveals nothing.
    """
    raw = json.dumps([kind, at.astimezone(UTC).isoformat(), pk], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(kind: CursorKind, token: str) -> tuple[datetime, int]:
    """The ``(at, pk)`` inside a token from :func:`encode_cursor`; :class:`BadRequest` otherwise."""
    if len(token) > MAX_CURSOR_CHARS:
        raise BadRequest("Invalid cursor")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        found_kind, at_text, pk = json.loads(raw)
        at = datetime.fromisoformat(at_text)
    except (binascii.Error, UnicodeDecodeError, ValueError, TypeError) as exc:
        raise BadRequest("Invalid cursor") from exc
    valid = found_kind == kind and at.tzinfo is not None and type(pk) is int and 0 < pk < MAX_PK
    if not valid:
        raise BadRequest("Invalid cursor")
    return at, pk


# --- the service -------------------------------------------------------------------------------


class ConversationService:
    """Conversation CRUD for one process; every method is scoped by the caller's user id."""

    def __init__(self, database: Database, store: PostgresStore | None = None) -> None:
        self.database = database
        self.store = store or PostgresStore(database)

    async def list(
        self,
        context: Caller,
        *,
        limit: int = DEFAULT_CONVERSATIONS_PAGE,
        offset: int = 0,
        after: str | None = None,
    ) -> ConversationPage:
        """Most recently updated first; ``after`` (a cursor) and ``offset`` are exclusive."""
        if after is not None and offset:
            raise BadRequest("Use either offset or after, not both")
        query = _conversations(context).limit(limit + 1).offset(offset)
        if after is not None:
            at, pk = decode_cursor("conversations", after)
            query = query.where(tuple_(THREADS.c.updated_at, THREADS.c.pk) < (at, pk))
        async with self.database.session() as session:
            rows = (await session.execute(query)).all()
        page, more = rows[:limit], len(rows) > limit
        last = page[-1] if more else None
        return ConversationPage(
            conversations=[_conversation(row) for row in page],
            next_cursor=encode_cursor("conversations", last.updated_at, last.pk) if last else None,
        )

    async def most_recent(self, context: Caller) -> Conversation | None:
        async with self.database.session() as session:
            row = (await session.execute(_conversations(context).limit(1))).first()
        return _conversation(row) if row else None

    async def get(
        self, context: Caller, conversation_id: str, *, limit: int = DEFAULT_MESSAGES_PAGE
    ) -> ConversationWithMessages:
        """The conversation and its first ``limit`` messages (one short transaction)."""
        async with self.database.session() as session:
            row = await _find(session, context, conversation_id)
            messages = await _message_page(session, context, conversation_id, limit, None)
        return ConversationWithMessages(
            **_conversation(row).model_dump(),
            messages=messages.messages,
            next_cursor=messages.next_cursor,
        )

    async def messages(
        self,
        context: Caller,
        conversation_id: str,
        *,
        limit: int = DEFAULT_MESSAGES_PAGE,
        after: str | None = None,
    ) -> MessagePage:
        cursor = decode_cursor("messages", after) if after is not None else None
        async with self.database.session() as session:
            await _find(session, context, conversation_id)
            return await _message_page(session, context, conversation_id, limit, cursor)

    async def create(self, context: Caller, title: str | None = None) -> Conversation:
        """A new, empty ChatKit thread, written by the store exactly as the chat function would."""
        thread = ThreadMetadata(
            id=self.store.generate_thread_id(context), title=title, created_at=datetime.now(UTC)
        )
        await self.store.save_thread(thread, context)
        return await self._summary(context, thread.id)

    async def rename(self, context: Caller, conversation_id: str, title: str) -> Conversation:
        thread = await self._load(context, conversation_id)
        await self.store.save_thread(thread.model_copy(update={"title": title}), context)
        return await self._summary(context, conversation_id)

    async def delete(self, context: Caller, conversation_id: str) -> DeletedConversation:
        """Delete the thread; its items go with it through the foreign key's ``ON DELETE CASCADE``.

        The store's delete is a silent no-op for a missing thread, so existence is checked first:
        a second delete must answer 404, like any other request naming a missing conversation.
        """
        await self._load(context, conversation_id)
        await self.store.delete_thread(conversation_id, context)
        return DeletedConversation(id=conversation_id)

    async def _load(self, context: Caller, conversation_id: str) -> ThreadMetadata:
        try:
            return await self.store.load_thread(conversation_id, context)
        except NotFoundError as exc:
            raise NotFound(CONVERSATION_NOT_FOUND) from exc

    async def _summary(self, context: Caller, conversation_id: str) -> Conversation:
        async with self.database.session() as session:
            return _conversation(await _find(session, context, conversation_id))


# --- queries -----------------------------------------------------------------------------------

_CONVERSATION_COLUMNS = (
    THREADS.c.id,
    THREADS.c.title,
    THREADS.c.created_at,
    THREADS.c.updated_at,
    THREADS.c.pk,
)


def _conversations(context: Caller) -> Select[Any]:
    """The caller's conversations, newest update first: a backward scan of the updated index."""
    return (
        select(*_CONVERSATION_COLUMNS)
        .where(THREADS.c.user_id == context.user_id)
        .order_by(THREADS.c.updated_at.desc(), THREADS.c.pk.desc())
    )


async def _find(session: AsyncSession, context: Caller, conversation_id: str) -> Row[Any]:
    query = select(*_CONVERSATION_COLUMNS).where(
        THREADS.c.user_id == context.user_id, THREADS.c.id == conversation_id
    )
    row = (await session.execute(query)).first()
    if row is None:
        raise NotFound(CONVERSATION_NOT_FOUND)
    return cast(Row[Any], row)


async def _message_page(
    session: AsyncSession,
    context: Caller,
    conversation_id: str,
    limit: int,
    cursor: tuple[datetime, int] | None,
) -> MessagePage:
    """Messages in creation order; items without a role (widgets, workflows, ...) are skipped."""
    query = (
        select(
            ITEMS.c.id,
            ITEMS.c.role,
            ITEMS.c.content_text,
            ITEMS.c.created_at,
            ITEMS.c.tool_calls,
            ITEMS.c.pk,
        )
        .where(
            ITEMS.c.user_id == context.user_id,
            ITEMS.c.thread_id == conversation_id,
            ITEMS.c.role.is_not(None),
        )
        .order_by(ITEMS.c.created_at, ITEMS.c.pk)
        .limit(limit + 1)
    )
    if cursor is not None:
        query = query.where(tuple_(ITEMS.c.created_at, ITEMS.c.pk) > cursor)
    rows = (await session.execute(query)).all()
    page, more = rows[:limit], len(rows) > limit
    return MessagePage(
        messages=[
            Message(
                id=row.id,
                role=row.role,
                content=row.content_text or "",
                created_at=row.created_at,
                tool_calls=row.tool_calls,
            )
            for row in page
        ],
        next_cursor=encode_cursor("messages", page[-1].created_at, page[-1].pk) if more else None,
    )


def _conversation(row: Row[Any]) -> Conversation:
    return Conversation(
        id=row.id, title=row.title, created_at=row.created_at, updated_at=row.updated_at
    )
