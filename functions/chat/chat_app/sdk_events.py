"""The ChatKit SDK's typed event stream: the one private SDK method this app relies on.

``ChatKitServer.process()`` (public) hands out serialised bytes; both the ChatKit protocol (which
must see ``stream_options`` to know when the response may start) and the simple protocols (which
translate the events) need the typed ``ThreadStreamEvent``\\ s, which only
``_process_streaming_impl`` yields. The SDK is pinned in ``uv.lock``, and
``tests/integration/chat/test_sdk_events.py`` pins the behaviour used here: typed events,
and for a new message the thread and the stored message before ``stream_options``, before
``respond()`` runs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from chatkit.server import ChatKitServer
from chatkit.types import StreamingReq, StreamOptionsEvent, ThreadStreamEvent
from chatkit_backend.caller import Caller
from chatkit_backend.held_write import release_held_write
from chatkit_backend.store import admitted

from .sse import READY, Ready


def thread_events(
    server: ChatKitServer[Caller], request: StreamingReq, caller: Caller
) -> AsyncIterator[ThreadStreamEvent]:
    """The events of a streaming request, as the SDK produces them before serialising."""
    return server._process_streaming_impl(request, caller)


async def ready_after_options(
    events: AsyncIterator[ThreadStreamEvent],
) -> AsyncIterator[ThreadStreamEvent | Ready]:
    """``events`` with :data:`~chat_app.sse.READY` right after ``stream_options``, once the turn
    is admitted (:func:`~chatkit_backend.store.admitted`).

    That is where the SDK's head ends (the thread read, the user message given to the store)
    and before it calls ``respond()``: every protocol's response starts there, what fails before
    it (a refused turn among them, even one whose head wrote nothing) is answered as a JSON
    error, and the model is never called for a turn that was not admitted. A new message's
    insert may still be held then (:mod:`~chatkit_backend.held_write`); it starts at the model
    call at the latest, or when the events end without one.
    """
    try:
        async for event in events:
            yield event
            if isinstance(event, StreamOptionsEvent):
                await admitted()
                yield READY
    finally:
        release_held_write()
