"""Attachments in the chat turn: the check of a message's attachments, and what the model sees.

Before a message is stored (:meth:`MessageAttachments.check`, from ``ChatServer.check``): the
ids are de-duplicated and capped before any query, loaded in one statement (missing, foreign and
deleted ones are 404), an attachment already in another conversation is 400, the uploaded bytes
are checked (exactly the declared size) and moved into place (never uploaded: 400), and their
total must fit the model request budget (413). No model call happens for a refused message.

For the model (:class:`ModelAttachments`): images become image parts with a ``data:`` URL of
their bytes, PDFs file parts with base64 ``file_data``, text-like files their text; each is
preceded by a line naming it. Only the attachments of the newest ``ATTACHMENT_MODEL_MESSAGES``
user messages are sent as bytes, newest first and within ``ATTACHMENT_MODEL_BYTES``; older ones
are described by name. Both model APIs take these parts (the Agents SDK's Chat Completions
converter maps them to ``image_url`` and ``file`` parts).
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Sequence
from typing import Any

from chatkit.types import Attachment, ThreadItem, UserMessageInput, UserMessageItem
from chatkit_backend.attachments import AttachmentFiles, distinct_ids, kind_of
from chatkit_backend.caller import Caller
from chatkit_backend.errors import BadRequest, NotFound, PayloadTooLarge
from chatkit_backend.observability import get_logger
from chatkit_backend.store import PostgresStore
from openai.types.responses import (
    ResponseInputFileParam,
    ResponseInputImageParam,
    ResponseInputTextParam,
)

from .offline_intents import ATTACHMENT_MARK, EARLIER_MARK


def size_text(size: int) -> str:
    """A size as a short text in decimal units (B, kB, MB), as the model and the user read it."""
    if size < 1000:
        return f"{size} B"
    if size < 1_000_000:
        return f"{size / 1000:.1f} kB"
    return f"{size / 1_000_000:.1f} MB"


def attachment_size(attachment: Attachment) -> int:
    return int((attachment.metadata or {}).get("size") or 0)


def attachment_label(attachment: Attachment) -> str:
    return f'"{attachment.name}" ({attachment.mime_type}, {size_text(attachment_size(attachment))})'


class MessageAttachments:
    """The send-time check of a message's attachments (see the module docstring)."""

    def __init__(self, store: PostgresStore, files: AttachmentFiles) -> None:
        self.store = store
        self.files = files

    async def check(self, message: UserMessageInput, thread_id: str | None, caller: Caller) -> None:
        """Refuse (404/400/413) or prepare the message's attachments; de-duplicates
        ``message.attachments`` in place, so the SDK loads each one once."""
        if not message.attachments:
            return
        ids = distinct_ids(message.attachments)
        message.attachments = ids
        rows = await self.store.load_attachments(ids, caller)
        for attachment_id in ids:
            row = rows.get(attachment_id)
            if row is None:
                raise NotFound(f"Attachment {attachment_id} not found")
            if row.thread_id is not None and row.thread_id != thread_id:
                raise BadRequest(f'Attachment "{row.name}" belongs to another conversation')
        total = sum(rows[attachment_id].size for attachment_id in ids)
        budget = self.files.settings.attachment_model_bytes
        if total > budget:
            raise PayloadTooLarge(
                f"The attachments of one message are {total} bytes; the model request budget "
                f"is {budget} bytes"
            )
        pending = [rows[attachment_id] for attachment_id in ids if not rows[attachment_id].stored]
        stored = await asyncio.gather(
            *(self.files.store_upload(caller.user_id, row) for row in pending)
        )
        missing = [row.name for row, ok in zip(pending, stored, strict=True) if not ok]
        if missing:
            raise BadRequest(
                "Not uploaded (or not the declared size): " + ", ".join(f'"{n}"' for n in missing)
            )
        await self.store.mark_stored([row.id for row in pending], caller)


class ModelAttachments:
    """The bytes one turn sends the model, and the content part of each attachment."""

    def __init__(
        self, contents: dict[str, bytes] | None = None, missing: frozenset[str] = frozenset()
    ) -> None:
        self.contents = contents or {}
        self.missing = missing
        """Attachments chosen for bytes that have none (metadata only, from before uploads)."""

    @classmethod
    async def for_history(
        cls, files: AttachmentFiles, history: Sequence[ThreadItem], caller: Caller
    ) -> ModelAttachments:
        """Read the bytes of the newest messages' attachments (see the module docstring)."""
        settings = files.settings
        messages = [item for item in history if isinstance(item, UserMessageItem)]
        chosen: list[Attachment] = []
        budget = settings.attachment_model_bytes
        for message in reversed(messages[-settings.attachment_model_messages :]):
            for attachment in message.attachments:
                size = attachment_size(attachment)
                if size > budget:
                    break
                budget -= size
                chosen.append(attachment)
        contents = await asyncio.gather(
            *(_read_or_none(files, caller, attachment.id) for attachment in chosen)
        )
        read = dict(zip((attachment.id for attachment in chosen), contents, strict=True))
        return cls(
            {key: data for key, data in read.items() if data is not None},
            frozenset(key for key, data in read.items() if data is None),
        )

    def parts(self, attachment: Attachment) -> list[Any]:
        """The naming line and the content of one attachment, as model input parts."""
        data = self.contents.get(attachment.id)
        label = attachment_label(attachment)
        if data is None and attachment.id in self.missing:
            note = f"{ATTACHMENT_MARK}{label}: its contents are not available]"
            return [ResponseInputTextParam(type="input_text", text=note)]
        if data is None:
            note = f"{EARLIER_MARK}{label}: shown with that message, not repeated here]"
            return [ResponseInputTextParam(type="input_text", text=note)]
        header = f"{ATTACHMENT_MARK}{label}]"
        kind = kind_of(attachment.mime_type)
        if kind == "text":
            text = data.decode("utf-8", errors="replace")
            return [ResponseInputTextParam(type="input_text", text=f"{header}\n{text}")]
        encoded = f"data:{attachment.mime_type};base64,{base64.b64encode(data).decode('ascii')}"
        content: Any
        if kind == "image":
            content = ResponseInputImageParam(type="input_image", image_url=encoded, detail="auto")
        else:
            content = ResponseInputFileParam(
                type="input_file", file_data=encoded, filename=attachment.name
            )
        return [ResponseInputTextParam(type="input_text", text=header), content]


async def _read_or_none(files: AttachmentFiles, caller: Caller, attachment_id: str) -> bytes | None:
    """The bytes, or None when there are none (metadata only, from before uploads) or storage
    fails now: the turn goes on and the model is told the contents are not available."""
    try:
        return await files.read(caller.user_id, attachment_id)
    except FileNotFoundError:
        get_logger().warning("attachment bytes missing", extra={"attachment_id": attachment_id})
    except Exception:
        get_logger().exception(
            "attachment bytes unreadable", extra={"attachment_id": attachment_id}
        )
    return None
