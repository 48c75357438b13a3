"""The history of a new message's turn, read while the SDK is still loading the thread and
storing the message.

A ``threads.add_user_message`` turn reads the thread's newest items before the message (its
history) after the SDK has loaded the thread and stored the message, two round trips it waits
for. The same page can be read as soon as the turn is admitted, on another pooled connection:
the items before the message are the thread's newest items until the message is stored. The read
is started in the request's task and handed to the turn's history through a context variable
(the stream's task copies it), for that user and thread only, once.
"""

from __future__ import annotations

import asyncio
from contextvars import ContextVar
from dataclasses import dataclass

from chatkit.types import Page, StreamingReq, ThreadItem, ThreadsAddUserMessageReq
from chatkit_backend.caller import Caller
from chatkit_backend.store import PostgresStore, admitted


@dataclass(frozen=True, slots=True)
class EarlyHistory:
    """A history read under way for one user's thread."""

    user_id: str
    thread_id: str
    read: asyncio.Task[Page[ThreadItem]]

    def cancel(self) -> None:
        """Stop the read if nobody took it (the turn was refused, failed, or ended)."""
        self.read.cancel()


_EARLY: ContextVar[EarlyHistory | None] = ContextVar("early_history", default=None)


def start_early_history(
    store: PostgresStore, request: StreamingReq, caller: Caller, limit: int
) -> EarlyHistory | None:
    """Start reading the history of ``request``'s turn, when it adds a message to a thread, once
    the turn's admission (:data:`~chatkit_backend.store.ADMISSION`) has passed; a refusal is
    raised by the read."""
    if not isinstance(request, ThreadsAddUserMessageReq):
        return None
    thread_id = request.params.thread_id
    read = asyncio.create_task(_read(store, thread_id, limit, caller))
    read.add_done_callback(_settled)
    early = EarlyHistory(caller.user_id, thread_id, read)
    _EARLY.set(early)
    return early


async def _read(
    store: PostgresStore, thread_id: str, limit: int, caller: Caller
) -> Page[ThreadItem]:
    await admitted()
    return await store.load_thread_items(thread_id, None, limit, "desc", caller)


def take_early_history(thread_id: str, caller: Caller) -> asyncio.Task[Page[ThreadItem]] | None:
    """The read started for this user's thread in this request, once; else ``None``."""
    early = _EARLY.get()
    if early is None or early.user_id != caller.user_id or early.thread_id != thread_id:
        return None
    _EARLY.set(None)
    return early.read


def _settled(read: asyncio.Task[Page[ThreadItem]]) -> None:
    """A read that failed, or that nobody awaited, leaves no unretrieved exception behind (the
    turn that takes it re-raises the failure when it awaits the read)."""
    if not read.cancelled():
        read.exception()
