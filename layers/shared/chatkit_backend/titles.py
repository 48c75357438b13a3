"""The title rule every view of a thread applies: the REST rename and ChatKit's ``threads.update``.

One rule in one place, so a title accepted by one protocol is never refused by the other.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, StringConstraints

from .input_checks import reject_nul

MAX_TITLE_CHARS = 200

Title = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TITLE_CHARS),
    AfterValidator(reject_nul),
]
"""A conversation title: surrounding whitespace trimmed, then 1..200 characters, no NUL."""
