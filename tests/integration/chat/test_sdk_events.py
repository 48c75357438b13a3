"""Pins the ChatKit SDK behaviour ``chat_app.sdk_events`` relies on (its one private method).

``_process_streaming_impl`` must yield typed events (not bytes), and for a new message it must
store the thread and the user message, and yield ``stream_options``, before ``respond()`` runs:
the chat function starts its response at ``stream_options``, which is what guarantees an
accepted message is stored before the first byte. An SDK upgrade that changes either fails here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from chat_app.sdk_events import thread_events
from chatkit.server import ChatKitServer
from chatkit.types import (
    AssistantMessageContent,
    AssistantMessageItem,
    InferenceOptions,
    StreamOptionsEvent,
    ThreadCreatedEvent,
    ThreadCreateParams,
    ThreadItemDoneEvent,
    ThreadMetadata,
    ThreadsCreateReq,
    ThreadStreamEvent,
    UserMessageInput,
    UserMessageItem,
    UserMessageTextContent,
)
from chatkit_backend.caller import Caller
from chatkit_backend.db import Database
from chatkit_backend.store import PostgresStore


class RecordingServer(ChatKitServer[Caller]):
    """Answers with one message; records what the store held when ``respond()`` started."""

    def __init__(self, store: PostgresStore) -> None:
        super().__init__(store)
        self.postgres = store
        self.stored_at_respond: list[Any] = []

    async def respond(
        self, thread: ThreadMetadata, input_user_message: UserMessageItem | None, context: Caller
    ) -> AsyncIterator[ThreadStreamEvent]:
        page = await self.postgres.load_thread_items(thread.id, None, 10, "asc", context)
        self.stored_at_respond = page.data
        yield ThreadItemDoneEvent(
            item=AssistantMessageItem(
                id="msg_answer",
                thread_id=thread.id,
                created_at=datetime.now(),
                content=[AssistantMessageContent(text="answer")],
            )
        )


def create_request(text: str) -> ThreadsCreateReq:
    return ThreadsCreateReq(
        params=ThreadCreateParams(
            input=UserMessageInput(
                content=[UserMessageTextContent(text=text)],
                attachments=[],
                inference_options=InferenceOptions(),
            )
        )
    )


async def test_typed_events_with_the_message_stored_before_stream_options(
    pg_database: Database, alice: Caller
) -> None:
    store = PostgresStore(pg_database)
    server = RecordingServer(store)
    events = thread_events(server, create_request("hello"), alice)

    before_options: list[ThreadStreamEvent] = []
    async for event in events:
        if isinstance(event, StreamOptionsEvent):
            break
        before_options.append(event)
    else:
        raise AssertionError("the SDK yielded no stream_options event")

    assert all(not isinstance(event, bytes) for event in before_options)
    created = next(e for e in before_options if isinstance(e, ThreadCreatedEvent))
    stored = await store.load_thread_items(created.thread.id, None, 10, "asc", alice)
    assert [type(item) for item in stored.data] == [UserMessageItem]
    assert server.stored_at_respond == []  # respond() has not run yet

    rest = [event async for event in events]
    assert server.stored_at_respond == stored.data
    assert any(isinstance(e, ThreadItemDoneEvent) and e.item.id == "msg_answer" for e in rest)
