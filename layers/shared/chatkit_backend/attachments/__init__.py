"""Attachment bytes: the storage port, its S3 and local adapters, limits, and every deletion.

:class:`AttachmentFiles` is what the rest of the code uses: signed upload and preview URLs,
moving an upload into place when its message is sent, reading bytes for the model, and deleting
bytes by attachment, by thread, by user, and of uploads never sent. It needs neither the ChatKit
SDK's server nor the agent stack, so the CRUD function deletes a conversation's bytes with it.

For the privacy and retention jobs: :meth:`AttachmentFiles.delete_user` (every byte of a user;
``DELETE /api/me`` calls it through :meth:`~AttachmentFiles.erase_user`),
:meth:`AttachmentFiles.delete_refs` (the retention sweep's hook),
:meth:`AttachmentFiles.delete_thread` (the bytes of one thread's attachments) and
:meth:`AttachmentFiles.expire_unsent` (attachments created but never sent, rows and bytes).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select

from ..db import Database
from ..settings import Settings
from ..tables import ATTACHMENTS, utcnow
from .local import LocalAttachmentRoutes, LocalStorage
from .policy import AttachmentPolicy, distinct_ids, kind_of
from .s3 import S3Storage
from .storage import (
    UPLOADS_PREFIX,
    BlobStorage,
    UploadTarget,
    file_key,
    keys_of,
    upload_key,
    user_prefixes,
)

UNSENT_DAYS = 1
"""Attachments created but never sent are deleted after this many days: the bucket's lifecycle
rule on ``uploads/`` (``template.yaml``) and :meth:`AttachmentFiles.expire_unsent`."""

LOCAL_FOLDER = "attachments"
"""Folder of :class:`LocalStorage` under ``DATA_DIR``."""


@dataclass(frozen=True, slots=True)
class StoredAttachment:
    """What a message check needs of one attachment row."""

    id: str
    thread_id: str | None
    stored: bool
    data: dict[str, Any]

    @property
    def size(self) -> int:
        metadata = self.data.get("metadata") or {}
        return int(metadata.get("size") or 0)

    @property
    def name(self) -> str:
        return str(self.data.get("name", ""))


class AttachmentFiles:
    """Attachment bytes of every user over one :class:`BlobStorage` (see the module docstring)."""

    def __init__(self, storage: BlobStorage, settings: Settings) -> None:
        self.storage = storage
        self.settings = settings
        self.policy = AttachmentPolicy.from_settings(settings)

    @classmethod
    def from_settings(cls, settings: Settings) -> AttachmentFiles:
        """S3 when ``ATTACHMENTS_BUCKET`` is set, else files under ``DATA_DIR``."""
        storage: BlobStorage
        if settings.attachments_bucket:
            storage = S3Storage(
                settings.attachments_bucket,
                upload_seconds=settings.attachment_upload_seconds,
                preview_seconds=settings.attachment_preview_seconds,
            )
        else:
            storage = LocalStorage(
                settings.data_dir / LOCAL_FOLDER,
                upload_seconds=settings.attachment_upload_seconds,
                preview_seconds=settings.attachment_preview_seconds,
            )
        return cls(storage, settings)

    @property
    def local(self) -> LocalStorage | None:
        """The local adapter, when that is the one in use (its route must then be served)."""
        return self.storage if isinstance(self.storage, LocalStorage) else None

    # --- URLs -----------------------------------------------------------------------------------

    def upload_target(
        self, user_id: str, attachment_id: str, mime_type: str, size: int
    ) -> UploadTarget:
        return self.storage.upload_target(upload_key(user_id, attachment_id), mime_type, size)

    def preview_url(self, user_id: str, attachment_id: str, mime_type: str, stored: bool) -> str:
        """A fresh signed URL of the bytes (the upload until it is stored, then the file)."""
        key = (file_key if stored else upload_key)(user_id, attachment_id)
        return self.storage.download_url(key, mime_type)

    # --- sending --------------------------------------------------------------------------------

    async def store_upload(self, user_id: str, attachment: StoredAttachment) -> bool:
        """Move an uploaded attachment's bytes into place; False when nothing (or bytes of
        another size) was uploaded. Already stored: True (a retried send)."""
        if attachment.stored:
            return True
        pending = upload_key(user_id, attachment.id)
        if await self.storage.size(pending) != attachment.size:
            final = await self.storage.size(file_key(user_id, attachment.id))
            return final == attachment.size
        await self.storage.move(pending, file_key(user_id, attachment.id))
        return True

    async def read(self, user_id: str, attachment_id: str) -> bytes:
        return await self.storage.read(file_key(user_id, attachment_id))

    # --- deleting -------------------------------------------------------------------------------

    async def delete_attachments(self, user_id: str, attachment_ids: Sequence[str]) -> None:
        """Both places each attachment's bytes can be (missing ones are fine)."""
        keys = [key for attachment_id in attachment_ids for key in keys_of(user_id, attachment_id)]
        if keys:
            await self.storage.delete(keys)

    async def delete_thread(self, database: Database, user_id: str, thread_id: str) -> list[str]:
        """The bytes of a thread's attachments (before the thread itself is deleted: a failure
        here leaves the conversation in place, so the delete can be retried). Returns the ids."""
        statement = select(ATTACHMENTS.c.id).where(
            ATTACHMENTS.c.user_id == user_id, ATTACHMENTS.c.thread_id == thread_id
        )
        async with database.session() as session:
            ids = list((await session.execute(statement)).scalars())
        await self.delete_attachments(user_id, ids)
        return ids

    async def delete_user(self, user_id: str) -> int:
        """Every byte of this user (uploads and files), whatever the database still says."""
        counts = await asyncio.gather(
            *(self.storage.delete_prefix(prefix) for prefix in user_prefixes(user_id))
        )
        return sum(counts)

    async def erase_user(self, user_id: str) -> None:
        """:meth:`delete_user` as the account erasure's hook (``DELETE /api/me``)."""
        await self.delete_user(user_id)

    async def delete_refs(self, refs: Sequence[tuple[str, str]]) -> None:
        """The bytes of these ``(user_id, attachment_id)`` pairs: the retention sweep's hook."""
        by_user: dict[str, list[str]] = {}
        for user_id, attachment_id in refs:
            by_user.setdefault(user_id, []).append(attachment_id)
        keys = [key for user, ids in by_user.items() for i in ids for key in keys_of(user, i)]
        if keys:
            await self.storage.delete(keys)

    async def expire_unsent(self, database: Database, now: datetime | None = None) -> int:
        """Attachments created but never sent, older than :data:`UNSENT_DAYS`: their rows
        and bytes, plus uploads no row names any more. Returns how many rows went.

        The bucket's lifecycle rule expires ``uploads/`` by itself; the same rule runs here for
        the local folder (the dev server calls this) and for rows, wherever bytes are kept.
        """
        cutoff = (now or utcnow()) - timedelta(days=UNSENT_DAYS)
        statement = (
            delete(ATTACHMENTS)
            .where(ATTACHMENTS.c.thread_id.is_(None), ATTACHMENTS.c.created_at < cutoff)
            .returning(ATTACHMENTS.c.user_id, ATTACHMENTS.c.id)
        )
        async with database.session() as session:
            rows = (await session.execute(statement)).all()
        keys = [key for row in rows for key in keys_of(row.user_id, row.id)]
        if keys:
            await self.storage.delete(keys)
        await self.storage.delete_prefix(UPLOADS_PREFIX, older_than=cutoff)
        return len(rows)


def install_local_attachment_routes(app: Any, files: AttachmentFiles) -> None:
    """With the local adapter, serve its signed route in front of ``app``'s guards (call it
    after the input guard and body limit are added, so it sits outside them)."""
    if files.local is not None:
        app.add_middleware(LocalAttachmentRoutes, storage=files.local)


__all__ = [
    "AttachmentFiles",
    "AttachmentPolicy",
    "BlobStorage",
    "LocalAttachmentRoutes",
    "LocalStorage",
    "S3Storage",
    "StoredAttachment",
    "UploadTarget",
    "distinct_ids",
    "install_local_attachment_routes",
    "kind_of",
]
