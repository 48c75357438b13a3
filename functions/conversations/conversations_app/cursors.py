"""Opaque keyset cursors: the ``(timestamp, pk)`` of the last row a page returned.

The next page is then one index range scan however deep it is. The kind is inside the token so a
messages cursor given to the conversations route is refused instead of paging from a meaningless
position. Tokens are not signed: they only position a query that is scoped to the caller anyway.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from typing import Literal

from chatkit_backend.errors import BadRequest

CursorKind = Literal["conversations", "messages"]
MAX_CURSOR_CHARS = 200
"""Real cursors are under 100 characters; longer input is refused before it is parsed."""
MAX_PK = 2**63
"""``pk`` is a BIGINT: a larger value would fail in the database instead of as a bad cursor."""


def encode_cursor(kind: CursorKind, at: datetime, pk: int) -> str:
    """An opaque, URL-safe token for the position just after ``(at, pk)``."""
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
