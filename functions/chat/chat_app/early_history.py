"""The history of a new message's turn, read in the same statement as its thread.

A ``threads.add_user_message`` turn reads its history (the thread's newest items before the
message) after the SDK has loaded the thread and stored the message. The SDK's thread read,
which comes first, can read the same page in the same statement: until the message is stored,
the items before it are the thread's newest. The turn asks for it before its tasks are created
(:data:`~chatkit_backend.store.WANTED_NEWEST`, which the stream's task copies), for that user and
thread only, once; the store's ``load_thread`` fills it, and :meth:`ChatServer.history` takes it.
"""

from __future__ import annotations

import asyncio

from chatkit.types import Page, StreamingReq, ThreadItem, ThreadsAddUserMessageReq
from chatkit_backend.caller import Caller
from chatkit_backend.store import WANTED_NEWEST, NewestWanted


def want_early_history(request: StreamingReq, caller: Caller, limit: int) -> NewestWanted | None:
    """Ask the thread read of ``request``'s turn for its history too, when it adds a message
    to a thread; ``cancel()`` the returned page once the turn is over (nothing if taken)."""
    if not isinstance(request, ThreadsAddUserMessageReq):
        return None
    page: asyncio.Future[Page[ThreadItem]] = asyncio.get_running_loop().create_future()
    wanted = NewestWanted(caller.user_id, request.params.thread_id, limit, page)
    WANTED_NEWEST.set(wanted)
    return wanted


def take_early_history(thread_id: str, caller: Caller) -> asyncio.Future[Page[ThreadItem]] | None:
    """The page read with this user's thread in this request, once; else ``None`` (no such
    request, or the thread was read without it)."""
    early = WANTED_NEWEST.get()
    if early is None or early.user_id != caller.user_id or early.thread_id != thread_id:
        return None
    WANTED_NEWEST.set(None)
    if not early.page.done() or early.page.cancelled():
        return None
    return early.page
