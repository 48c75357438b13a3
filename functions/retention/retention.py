"""The retention sweep: conversations past ``RETENTION_DAYS`` and expired leftovers, deleted.

What one sweep deletes, every statement scoped by time only (this job acts for nobody):

* with ``RETENTION_DAYS`` set, every conversation not updated for that many days; its items and
  attachments go with it (foreign keys cascade);
* attachments never sent in a message (``thread_id`` NULL) older than
  :data:`UNSENT_ATTACHMENT_HOURS`: an upload that was started and abandoned;
* rows past their ``expires_at`` in every table that has that column
  (:func:`chatkit_backend.tables.expiring_tables`: leases, limit windows, whichever feature
  adds them).

Attachment bytes are deleted before their rows, through ``delete_attachment_bytes`` (the
attachment storage's hook): a failure then leaves the rows, and the next sweep retries them.
Deletes run in batches, each its own short transaction, so a large backlog never holds one
long transaction or a lock on a whole table.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from chatkit_backend.db import Database
from chatkit_backend.tables import ATTACHMENTS, THREADS, expiring_tables, utcnow
from sqlalchemy import ColumnElement, Row, Table, delete, select, tuple_

logger = logging.getLogger(__name__)

UNSENT_ATTACHMENT_HOURS = 24
"""An attachment not sent in a message within this long is an abandoned upload."""
BATCH_SIZE = 500
"""Rows deleted per transaction."""

AttachmentRef = tuple[str, str]
"""``(user_id, attachment_id)`` of an attachment whose bytes must go."""
DeleteAttachmentBytes = Callable[[Sequence[AttachmentRef]], Awaitable[None]]
"""Deletes the stored bytes of these attachments (S3 objects or local files); idempotent."""


@dataclass
class SweepReport:
    """Rows deleted by one sweep, per kind (logged, and the handler's return value)."""

    conversations: int = 0
    unsent_attachments: int = 0
    expired: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {
            "conversations": self.conversations,
            "unsent_attachments": self.unsent_attachments,
            "expired": dict(self.expired),
        }


async def sweep(
    database: Database,
    retention_days: int | None,
    *,
    now: datetime | None = None,
    delete_attachment_bytes: DeleteAttachmentBytes | None = None,
) -> SweepReport:
    """One sweep at ``now`` (default: the current time); see the module docstring."""
    now = now or utcnow()
    report = SweepReport()
    if retention_days is not None:
        cutoff = now - timedelta(days=retention_days)
        report.conversations = await _delete_threads_before(
            database, cutoff, delete_attachment_bytes
        )
    abandoned = now - timedelta(hours=UNSENT_ATTACHMENT_HOURS)
    report.unsent_attachments = await _delete_unsent_attachments(
        database, abandoned, delete_attachment_bytes
    )
    for table in expiring_tables():
        report.expired[table.name] = await _delete_batches(
            database, table, table.c.expires_at < now
        )
    logger.info("retention sweep done", extra={"deleted": report.as_dict()})
    return report


async def _delete_threads_before(
    database: Database, cutoff: datetime, delete_bytes: DeleteAttachmentBytes | None
) -> int:
    """Threads last updated before ``cutoff``, with their attachments' bytes first."""
    deleted = 0
    while True:
        async with database.session() as session:
            threads = (
                await session.execute(
                    select(THREADS.c.pk, THREADS.c.user_id, THREADS.c.id)
                    .where(THREADS.c.updated_at < cutoff)
                    .order_by(THREADS.c.pk)
                    .limit(BATCH_SIZE)
                )
            ).all()
        if not threads:
            return deleted
        if delete_bytes is not None:
            await delete_bytes(await _attachments_of(database, threads))
        async with database.session() as session:
            result = await session.execute(
                delete(THREADS).where(
                    THREADS.c.pk.in_([row.pk for row in threads]),
                    THREADS.c.updated_at < cutoff,  # not if it was written to meanwhile
                )
            )
        deleted += int(getattr(result, "rowcount", 0) or 0)
        if len(threads) < BATCH_SIZE:
            return deleted


async def _attachments_of(
    database: Database, threads: Sequence[Row[*tuple[Any, ...]]]
) -> list[AttachmentRef]:
    owned = tuple_(ATTACHMENTS.c.user_id, ATTACHMENTS.c.thread_id).in_(
        [(row.user_id, row.id) for row in threads]
    )
    async with database.session() as session:
        found = await session.execute(select(ATTACHMENTS.c.user_id, ATTACHMENTS.c.id).where(owned))
        return [(row.user_id, row.id) for row in found]


async def _delete_unsent_attachments(
    database: Database, before: datetime, delete_bytes: DeleteAttachmentBytes | None
) -> int:
    unsent = ATTACHMENTS.c.thread_id.is_(None) & (ATTACHMENTS.c.created_at < before)
    if delete_bytes is not None:
        async with database.session() as session:
            rows = (
                await session.execute(select(ATTACHMENTS.c.user_id, ATTACHMENTS.c.id).where(unsent))
            ).all()
        if rows:
            await delete_bytes([(row.user_id, row.id) for row in rows])
    return await _delete_batches(database, ATTACHMENTS, unsent)


async def _delete_batches(database: Database, table: Table, condition: ColumnElement[bool]) -> int:
    """Delete the rows matching ``condition``, :data:`BATCH_SIZE` per transaction."""
    key = next(iter(table.primary_key.columns))
    deleted = 0
    while True:
        async with database.session() as session:
            keys = (
                (await session.execute(select(key).where(condition).limit(BATCH_SIZE)))
                .scalars()
                .all()
            )
            if not keys:
                return deleted
            result = await session.execute(delete(table).where(key.in_(keys), condition))
        deleted += int(getattr(result, "rowcount", 0) or 0)
        if len(keys) < BATCH_SIZE:
            return deleted
