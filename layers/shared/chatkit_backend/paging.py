"""Keyset paging shared by the ChatKit store and the conversations function (no ChatKit import).

A page asks for one row more than it returns: that row only tells whether another page follows.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, Select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

MAX_PAGE_SIZE = 100
"""Largest page any caller gets: a ChatKit ``threads.list``/``items.list`` limit or a REST
``limit`` is the client's to choose, and a huge one must not load a whole history at once."""


async def fetch_page(
    session: AsyncSession | AsyncConnection, statement: Select[Any], limit: int
) -> tuple[list[Row[Any]], bool]:
    """The first ``limit`` rows of ``statement`` and whether more follow."""
    rows = (await session.execute(statement.limit(limit + 1))).all()
    return list(rows[:limit]), len(rows) > limit
