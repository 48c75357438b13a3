"""Entry point of the retention function: an EventBridge schedule invokes it (template.yaml).

Each invocation runs one sweep (:mod:`retention`) on its own event loop with its own engine,
disposed at the end: a scheduled job runs rarely, so nothing is kept between invocations (an
engine's connections belong to the loop that opened them). The event's content is ignored.
Locally, ``make retention-sweep`` runs the same sweep once against the configured database
(the embedded SQLite one by default).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import retention
from chatkit_backend.attachments import AttachmentFiles
from chatkit_backend.db import Database, resolve_database_url
from chatkit_backend.settings import Settings, get_settings


async def run_sweep(settings: Settings) -> dict[str, object]:
    """One sweep over the configured database; the rows deleted per kind."""
    database = Database.from_url(resolve_database_url(settings), settings)
    try:
        files = AttachmentFiles.from_settings(settings)
        report = await retention.sweep(
            database, settings.retention_days, delete_attachment_bytes=files.delete_refs
        )
    finally:
        await database.dispose()
    return report.as_dict()


def handler(event: Any, context: Any) -> dict[str, object]:
    return asyncio.run(run_sweep(get_settings()))


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    print(handler({}, None))
