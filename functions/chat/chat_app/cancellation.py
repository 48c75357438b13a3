"""How work stops early without losing what it must finish.

* :class:`HangUp`: the client of the current stream went away. It is a signal, not a task
  cancellation: the turn stops its run at its next step and raises ``CancelledError`` itself,
  from inside ``respond()``, so the SDK saves the partial answer and no store write (nor the SDK's
  own helper tasks) is ever interrupted half-way.
* :func:`shielded`: work that must complete even if the caller is cancelled (repeatedly, as
  anyio cancel scopes do), e.g. the writes of a cancelled stream.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import TypeVar

from chatkit_backend.observability import get_logger

T = TypeVar("T")


class HangUp:
    """Set once the client of one stream has gone; subscribers are told at once."""

    def __init__(self) -> None:
        self.happened = False
        self._subscribers: list[Callable[[], None]] = []

    def signal(self) -> None:
        if self.happened:
            return
        self.happened = True
        for subscriber in list(self._subscribers):
            subscriber()

    def subscribe(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` on hang-up (now, if it already happened); returns the unsubscribe."""
        self._subscribers.append(callback)
        if self.happened:
            callback()
        return lambda: self._subscribers.remove(callback)


CURRENT_HANG_UP: ContextVar[HangUp | None] = ContextVar("chat_hang_up", default=None)
"""The hang-up signal of the stream the current task produces (unset: nobody can hang up)."""


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
