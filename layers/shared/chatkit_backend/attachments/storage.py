"""The storage port for attachment bytes, and where each attachment's bytes live in it.

Bytes never pass through a function's request body (function URLs cap a request): the client
uploads them to an :class:`UploadTarget` (a presigned S3 ``PUT``, or the local server's signed
route) and the browser loads previews from a signed ``GET``. Two adapters implement the port:
:class:`~chatkit_backend.attachments.s3.S3Storage` (``ATTACHMENTS_BUCKET``) and
:class:`~chatkit_backend.attachments.local.LocalStorage` (files under ``DATA_DIR``).

Object keys are derived, never stored: ``uploads/<user>/<id>`` until the attachment is sent (the
prefix the bucket's lifecycle rule expires), then ``files/<user>/<id>``. ``<user>`` is a hash of
the user id, so any user id makes a safe key and one user's bytes sit under one prefix.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

UPLOADS_PREFIX = "uploads/"
"""Bytes of attachments not sent yet: expired by the lifecycle rule (and the local sweep)."""
FILES_PREFIX = "files/"
"""Bytes of attachments that belong to a message."""

ATTACHMENT_ID = re.compile(r"atc_[0-9a-f]{32}")
"""The ids :func:`chatkit_backend.ids.new_id` gives attachments: the only ones a key is made of."""
KEY = re.compile(r"(uploads|files)/[0-9a-f]{32}/atc_[0-9a-f]{32}")


@dataclass(frozen=True, slots=True)
class UploadTarget:
    """Where and how the client sends the bytes (ChatKit's ``AttachmentUploadDescriptor``)."""

    url: str
    method: Literal["PUT", "POST"] = "PUT"
    headers: dict[str, str] = field(default_factory=dict)


class BlobStorage(Protocol):
    """What the attachments code needs from a place that keeps bytes (see the module docstring).

    URLs are built locally (no network); the other methods may call the storage service.
    """

    def upload_target(self, key: str, mime_type: str, size: int) -> UploadTarget:
        """A signed, expiring upload of exactly ``size`` bytes of ``mime_type`` to ``key``."""
        ...

    def download_url(self, key: str, mime_type: str) -> str:
        """A signed, expiring URL a browser loads with no header (image previews)."""
        ...

    async def size(self, key: str) -> int | None:
        """The stored object's size, None when there is none."""
        ...

    async def read(self, key: str) -> bytes:
        """The object's bytes (``FileNotFoundError`` when there is none)."""
        ...

    async def move(self, source: str, target: str) -> None:
        """Move an object to another key (an upload becoming a message's file)."""
        ...

    async def delete(self, keys: Sequence[str]) -> None:
        """Delete these objects; missing ones are ignored."""
        ...

    async def delete_prefix(self, prefix: str, *, older_than: datetime | None = None) -> int:
        """Delete every object under ``prefix`` (only those last written before ``older_than``
        when given); returns how many went."""
        ...


def user_key(user_id: str) -> str:
    """The user's folder name: a hash, so a key never carries (or depends on) the raw id."""
    return hashlib.sha256(user_id.encode()).hexdigest()[:32]


def upload_key(user_id: str, attachment_id: str) -> str:
    return f"{UPLOADS_PREFIX}{user_key(user_id)}/{_checked(attachment_id)}"


def file_key(user_id: str, attachment_id: str) -> str:
    return f"{FILES_PREFIX}{user_key(user_id)}/{_checked(attachment_id)}"


def user_prefixes(user_id: str) -> tuple[str, str]:
    """Every prefix holding this user's bytes (uploads and files)."""
    folder = user_key(user_id)
    return f"{UPLOADS_PREFIX}{folder}/", f"{FILES_PREFIX}{folder}/"


def keys_of(user_id: str, attachment_id: str) -> tuple[str, str]:
    """Both places an attachment's bytes can be: deleting an attachment deletes both."""
    return upload_key(user_id, attachment_id), file_key(user_id, attachment_id)


def _checked(attachment_id: str) -> str:
    if not ATTACHMENT_ID.fullmatch(attachment_id):
        raise ValueError("not an attachment id of this server")
    return attachment_id
