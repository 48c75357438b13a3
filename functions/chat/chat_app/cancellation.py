"""Finishing work that must not be lost to a cancellation.

When a client disconnects, the request's task is cancelled, and the cleanup that runs next (saving
the partial answer, closing the turn) awaits the database. Under anyio cancel scopes (Starlette's
own streaming response) a cancellation is *level-triggered*: every further ``await`` in the
cancelled scope raises again, so an unshielded write would itself be cancelled and the partial
answer lost. :func:`shielded` runs the work in a task of its own, which no cancellation of the
caller reaches, and waits for it however many cancellations arrive before re-raising one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from chatkit_backend.observability import get_logger

T = TypeVar("T")


async def shielded(awaitable: Awaitable[T]) -> T:
    """Await ``awaitable`` to completion even if the caller is cancelled (once or repeatedly).

    If the caller was cancelled meanwhile, that ``CancelledError`` is re-raised once the work is
    done (a failure of the work is then logged, since nobody else will see it); otherwise the
    work's result or exception is returned or raised as usual.
    """
    task = asyncio.ensure_future(awaitable)
    cancellation: asyncio.CancelledError | None = None
    while not task.done():
        try:
            await asyncio.wait({task})
        except asyncio.CancelledError as exc:
            cancellation = exc
    if cancellation is not None:
        if not task.cancelled() and task.exception() is not None:
            get_logger().error("shielded work failed", exc_info=task.exception())
        # The caller's own exception: anyio recognises its scope's cancellations by their message.
        raise cancellation
    return task.result()
