"""The title rule every view of a thread applies: the REST rename and ChatKit's ``threads.update``.

One rule in one place, so a title accepted by one protocol is never refused by the other. A title
the user chose (either rename) is marked in the thread's ``metadata`` so a generated title never
replaces it (docs/composer.md): the mark lives in the thread's JSON document, no column needed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import AfterValidator, StringConstraints

from .input_checks import reject_nul

MAX_TITLE_CHARS = 200

Title = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TITLE_CHARS),
    AfterValidator(reject_nul),
]
"""A conversation title: surrounding whitespace trimmed, then 1..200 characters, no NUL."""

TITLE_SOURCE_KEY = "title_source"
"""The ``ThreadMetadata.metadata`` entry saying who set the title; ``"user"`` after a rename."""


def set_by_user(metadata: Mapping[str, Any] | None) -> bool:
    """True when the user named the thread (a generated title must then leave it alone)."""
    return metadata is not None and metadata.get(TITLE_SOURCE_KEY) == "user"


def renamed_by_user(document: Mapping[str, Any], title: str) -> dict[str, Any]:
    """The thread's JSON document (``ThreadMetadata`` dump) with ``title`` chosen by the user."""
    metadata = dict(document.get("metadata") or {})
    metadata[TITLE_SOURCE_KEY] = "user"
    return {**document, "title": title, "metadata": metadata}
