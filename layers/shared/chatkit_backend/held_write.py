"""A new message's insert, held until its turn calls the model, so the two overlap.

A turn that adds a message to a thread stores the message and then calls the model; a model takes
far longer to answer than the insert takes, so the insert need not come first. The chat service
gives such a turn a :class:`HeldWrite` (:data:`HELD_WRITE`); the store hands it the message's
insert instead of running it. The write starts when the model is called
(:func:`release_held_write`, the turn's model wrapper), when another write of the turn comes
(:meth:`HeldWrite.flush`: the turn's writes keep their order), or when the turn's head ends
without a model call. The response starts only once the insert is done
(:meth:`HeldWrite.stored`): a failed insert is the turn's error answer, never an answer to a
message that was not stored.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from contextvars import ContextVar
from typing import Any

Write = Callable[[], Coroutine[Any, Any, None]]


class HeldWrite:
    """One turn's held insert: held at most once, started at most once, awaited by many."""

    def __init__(self) -> None:
        self._write: Write | None = None
        self._task: asyncio.Future[None] | None = None
        self._released = asyncio.Event()

    @property
    def holds(self) -> bool:
        """Whether a write was handed over (started or not)."""
        return self._write is not None

    def hold(self, write: Write) -> bool:
        """Take ``write`` to start later; False (the caller writes now) when one is held
        already or the turn has gone past the point where it could wait."""
        if self._write is not None or self._released.is_set():
            return False
        self._write = write
        return True

    def release(self) -> None:
        """Start the held write, once; with none held, let :meth:`stored` return."""
        if self._released.is_set():
            return
        self._released.set()
        if self._write is not None:
            self._task = asyncio.ensure_future(self._write())
            self._task.add_done_callback(_retrieved)

    async def flush(self) -> None:
        """Start the held write now and wait for it: before another write of the turn."""
        self.release()
        await self.stored()

    async def stored(self) -> None:
        """Wait until the write was started and has finished; raise what it raised. Cancelling
        the waiter does not cancel the write."""
        await self._released.wait()
        if self._task is not None:
            await asyncio.shield(self._task)


HELD_WRITE: ContextVar[HeldWrite | None] = ContextVar("held_write", default=None)
"""The held write of the turn the current task runs (set by the chat service before the turn's
tasks are created, so they all share it)."""


def release_held_write() -> None:
    """Start the current turn's held write, if any (the model is being called)."""
    held = HELD_WRITE.get()
    if held is not None:
        held.release()


async def flush_held_write() -> None:
    """Wait for the current turn's held write, starting it if it waits (before another write)."""
    held = HELD_WRITE.get()
    if held is not None and held.holds:
        await held.flush()


def _retrieved(task: asyncio.Future[None]) -> None:
    """A failed write nobody awaited (the turn was cancelled) is no unretrieved exception; the
    turn that awaits it re-raises it."""
    if not task.cancelled():
        task.exception()
