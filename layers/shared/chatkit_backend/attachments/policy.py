"""What an attachment may be (type, size) and how many one message may carry.

Checked when an attachment is created (before any upload URL exists: too big is 413, a type
outside ``ATTACHMENT_TYPES`` is 400) and when a message names attachments (before any query:
more than :data:`MAX_ATTACHMENTS_PER_MESSAGE` distinct ids, or a list longer than
:data:`MAX_ATTACHMENT_REFERENCES`, is 400).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from ..errors import BadRequest, PayloadTooLarge
from ..settings import Settings

MAX_ATTACHMENTS_PER_MESSAGE = 10
"""Distinct attachments one message may carry (ChatKit's composer default ``maxCount``)."""
MAX_ATTACHMENT_REFERENCES = 2 * MAX_ATTACHMENTS_PER_MESSAGE
"""Longest attachment id list accepted, repeats included: a client repeats an id by mistake,
never thousands of times, and such a list is refused before any work is done for it."""
MAX_NAME_CHARS = 255

Kind = Literal["image", "pdf", "text"]
"""How the model receives an attachment: image part, file part, or the text itself."""

TEXT_TYPES = frozenset({"application/json"})
"""Text-like types outside ``text/*``."""


def kind_of(mime_type: str) -> Kind:
    mime_type = mime_type.lower()
    if mime_type.startswith("image/"):
        return "image"
    if mime_type == "application/pdf":
        return "pdf"
    return "text"


@dataclass(frozen=True, slots=True)
class AttachmentPolicy:
    """The limits of ``Settings`` that decide whether an attachment is accepted."""

    max_bytes: int
    types: frozenset[str]

    @classmethod
    def from_settings(cls, settings: Settings) -> AttachmentPolicy:
        return cls(
            max_bytes=settings.max_attachment_bytes,
            types=frozenset(kind.lower() for kind in settings.attachment_types),
        )

    def check_new(self, name: str, size: int, mime_type: str) -> str:
        """The normalised MIME type of an acceptable new attachment; raises 400/413 otherwise."""
        mime_type = mime_type.split(";", 1)[0].strip().lower()
        if not name.strip() or len(name) > MAX_NAME_CHARS:
            raise BadRequest(f"An attachment name has 1 to {MAX_NAME_CHARS} characters")
        if mime_type not in self.types:
            allowed = ", ".join(sorted(self.types))
            raise BadRequest(
                f"Attachments of type {mime_type or '(none)'} are not accepted ({allowed})"
            )
        if size < 1:
            raise BadRequest("An attachment is at least 1 byte")
        if size > self.max_bytes:
            raise PayloadTooLarge(f"Attachment too large ({size} bytes, at most {self.max_bytes})")
        return mime_type


def distinct_ids(ids: Sequence[str]) -> list[str]:
    """The ids in first-seen order, each once; refuses too many before anything is loaded."""
    if len(ids) > MAX_ATTACHMENT_REFERENCES:
        raise BadRequest(
            f"Too many attachment references ({len(ids)}, at most {MAX_ATTACHMENT_REFERENCES})"
        )
    unique = list(dict.fromkeys(ids))
    if len(unique) > MAX_ATTACHMENTS_PER_MESSAGE:
        raise BadRequest(
            f"Too many attachments ({len(unique)}, at most {MAX_ATTACHMENTS_PER_MESSAGE} "
            "per message)"
        )
    return unique
