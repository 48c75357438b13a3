"""Conversation CRUD: the operations behind the routes, each one short transaction.

A conversation *is* a ChatKit thread (same ``threads`` row and JSON) and a message is a thread
item whose projected ``role`` is set, so the chat function's threads are listed here and the
conversations created here continue in the chat. ``offset`` paging is kept for the original
API and costs a scan of every skipped row; ``after`` (a cursor) costs the same at any depth.
"""

from __future__ import annotations

import builtins
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from chatkit_backend.attachments import AttachmentFiles
from chatkit_backend.caller import Caller
from chatkit_backend.db import Database
from chatkit_backend.errors import BadRequest, NotFound, PayloadTooLarge
from chatkit_backend.paging import fetch_page
from chatkit_backend.tables import utcnow
from sqlalchemy.ext.asyncio import AsyncSession

from . import queries
from .cursors import decode_cursor, encode_cursor
from .queries import AnyRow
from .schemas import (
    AccountExport,
    Conversation,
    ConversationPage,
    ConversationWithMessages,
    DeletedConversation,
    ErasedAccount,
    Message,
    MessageAttachment,
    MessagePage,
)

DEFAULT_CONVERSATIONS_PAGE = 50
DEFAULT_MESSAGES_PAGE = 100
CONVERSATION_NOT_FOUND = "Conversation not found"
MAX_EXPORT_BYTES = 5_000_000
"""Largest export one buffered function URL response carries (under the function URL limit)."""

EraseUserBytes = Callable[[str], Awaitable[None]]
"""Deletes every stored attachment byte of one user (S3 objects or local files): the hook the
attachment storage connects (``create_app(erase_user_bytes=...)``). Must be idempotent."""


class ConversationService:
    """Conversation CRUD for one process; every method is scoped by the caller's user id."""

    def __init__(self, database: Database, files: AttachmentFiles | None = None) -> None:
        self.database = database
        self.files = files

    async def list(
        self,
        caller: Caller,
        *,
        limit: int = DEFAULT_CONVERSATIONS_PAGE,
        offset: int = 0,
        after: str | None = None,
    ) -> ConversationPage:
        """Most recently updated first; ``after`` (a cursor) and ``offset`` are exclusive."""
        if after is not None and offset:
            raise BadRequest("Use either offset or after, not both")
        query = queries.conversations(caller.user_id).offset(offset)
        if after is not None:
            query = queries.conversations_before(query, *decode_cursor("conversations", after))
        async with self.database.session() as session:
            page, more = await fetch_page(session, query, limit)
        last = page[-1] if more else None
        return ConversationPage(
            conversations=[_conversation(row) for row in page],
            next_cursor=encode_cursor("conversations", last.updated_at, last.pk) if last else None,
        )

    async def most_recent(self, caller: Caller) -> Conversation | None:
        async with self.database.session() as session:
            row = (await session.execute(queries.conversations(caller.user_id).limit(1))).first()
        return _conversation(row) if row else None

    async def get(
        self, caller: Caller, conversation_id: str, *, limit: int = DEFAULT_MESSAGES_PAGE
    ) -> ConversationWithMessages:
        """The conversation and its first ``limit`` messages (one short transaction)."""
        async with self.database.session() as session:
            row = await _find(session, caller, conversation_id)
            messages = await self._message_page(session, caller, conversation_id, limit, None)
        return ConversationWithMessages(
            **_conversation(row).model_dump(),
            messages=messages.messages,
            next_cursor=messages.next_cursor,
        )

    async def messages(
        self,
        caller: Caller,
        conversation_id: str,
        *,
        limit: int = DEFAULT_MESSAGES_PAGE,
        after: str | None = None,
    ) -> MessagePage:
        cursor = decode_cursor("messages", after) if after is not None else None
        async with self.database.session() as session:
            await _find(session, caller, conversation_id)
            return await self._message_page(session, caller, conversation_id, limit, cursor)

    async def create(self, caller: Caller, title: str | None = None) -> Conversation:
        """A new, empty thread, readable by the ChatKit store like one the chat created."""
        async with self.database.session() as session:
            return _conversation(await queries.insert_conversation(session, caller.user_id, title))

    async def rename(self, caller: Caller, conversation_id: str, title: str) -> Conversation:
        async with self.database.session() as session:
            row = await queries.rename_conversation(session, caller.user_id, conversation_id, title)
        if row is None:
            raise NotFound(CONVERSATION_NOT_FOUND)
        return _conversation(row)

    async def delete(self, caller: Caller, conversation_id: str) -> DeletedConversation:
        """Delete the thread with its items; a missing (or foreign) one is a 404, every time.

        Its attachments' bytes go first: if that fails the conversation is still there, and
        the delete can simply be retried.
        """
        if self.files is not None:
            await self.files.delete_thread(self.database, caller.user_id, conversation_id)
        async with self.database.session() as session:
            deleted = await queries.delete_conversation(session, caller.user_id, conversation_id)
        if not deleted:
            raise NotFound(CONVERSATION_NOT_FOUND)
        return DeletedConversation(id=conversation_id)

    async def _message_page(
        self,
        session: AsyncSession,
        caller: Caller,
        conversation_id: str,
        limit: int,
        cursor: tuple[datetime, int] | None,
    ) -> MessagePage:
        query = queries.messages(caller.user_id, conversation_id, cursor)
        page, more = await fetch_page(session, query, limit)
        return MessagePage(
            messages=[
                Message(
                    id=row.id,
                    role=row.role,
                    content=row.content_text or "",
                    created_at=row.created_at,
                    tool_calls=row.tool_calls,
                    widget=widget_of(row.widget_item),
                    attachments=self._attachments(caller, row.attachments),
                )
                for row in page
            ],
            next_cursor=(
                encode_cursor("messages", page[-1].created_at, page[-1].pk) if more else None
            ),
        )

    def _attachments(self, caller: Caller, stored: Any) -> builtins.list[MessageAttachment] | None:
        """A message's attachments as the REST view shows them; images with a fresh preview."""
        if not isinstance(stored, list) or not stored:
            return None
        shown: builtins.list[MessageAttachment] = []
        for entry in stored:
            if not isinstance(entry, dict):
                continue
            attachment = MessageAttachment(
                id=str(entry.get("id")),
                name=str(entry.get("name")),
                mime_type=str(entry.get("mime_type")),
                size=int((entry.get("metadata") or {}).get("size") or 0),
            )
            if entry.get("type") == "image" and self.files is not None:
                attachment.preview_url = self.files.preview_url(
                    caller.user_id, attachment.id, attachment.mime_type, True
                )
            shown.append(attachment)
        return shown or None


async def _find(session: AsyncSession, caller: Caller, conversation_id: str) -> AnyRow:
    row = await queries.find_conversation(session, caller.user_id, conversation_id)
    if row is None:
        raise NotFound(CONVERSATION_NOT_FOUND)
    return row


def _conversation(row: AnyRow) -> Conversation:
    return Conversation(
        id=row.id, title=row.title, created_at=row.created_at, updated_at=row.updated_at
    )


def widget_of(item: Any) -> dict[str, Any] | None:
    """The widget of a widget item's stored JSON (``WidgetItem.widget``), if it has one."""
    widget = item.get("widget") if isinstance(item, dict) else None
    return widget if isinstance(widget, dict) else None


class AccountService:
    """The caller's whole account: erase it (GDPR Article 17) or export it (Article 20).

    Both walk :func:`chatkit_backend.tables.user_tables`, so every user-scoped table is
    covered, whichever feature added it. Erasure deletes the attachment bytes first (through
    ``erase_user_bytes``) and then every row in one transaction: a failure leaves the rows, and
    the request can simply be repeated.
    """

    def __init__(self, database: Database, erase_user_bytes: EraseUserBytes | None = None) -> None:
        self.database = database
        self._erase_user_bytes = erase_user_bytes

    async def erase(self, caller: Caller) -> ErasedAccount:
        if self._erase_user_bytes is not None:
            await self._erase_user_bytes(caller.user_id)
        async with self.database.session() as session:
            deleted = await queries.erase_user(session, caller.user_id)
        return ErasedAccount(deleted=deleted)

    async def export(self, caller: Caller) -> str:
        """The export as JSON text (:class:`AccountExport`), refused past ``MAX_EXPORT_BYTES``."""
        async with self.database.session() as session:
            tables = await queries.export_user(session, caller.user_id)
        export = AccountExport(user_id=caller.user_id, exported_at=utcnow(), tables=tables)
        body = export.model_dump_json()
        if len(body.encode()) > MAX_EXPORT_BYTES:
            raise PayloadTooLarge(
                "The export is larger than one response can carry; delete some conversations "
                "first or ask the operator for an export"
            )
        return body
