"""Client text PostgreSQL cannot store: NUL characters.

PostgreSQL rejects ``\\u0000`` in ``text`` and ``jsonb``. Left alone, a message or title holding
one fails deep inside a write (a 500, or a ChatKit stream that dies after ``thread.created`` and
loses the message), so every entry point refuses it up front with a 400 that names the problem:
bodies through :func:`contains_nul` / :func:`reject_nul`, paths and query strings through
``chatkit_backend.web.NulCharacterMiddleware``.
"""

from __future__ import annotations

from typing import Any

NUL_MESSAGE = "Text must not contain NUL (\\u0000) characters"


def contains_nul(value: Any) -> bool:
    """Whether a decoded JSON value holds a NUL in any string (keys included)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(contains_nul(k) or contains_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(contains_nul(v) for v in value)
    return False


def reject_nul(value: str) -> str:
    """A pydantic ``AfterValidator``: the value unchanged, or a ValueError naming the problem."""
    if "\x00" in value:
        raise ValueError(NUL_MESSAGE)
    return value
