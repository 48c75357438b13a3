"""Generated titles over the real model path (both APIs, the fake OpenAI server over HTTP).

The title request is the fake's non-streamed request (kept apart from the answer's requests):
what it carried (model, store, instructions, no user identity) is asserted, as are the
``thread.updated`` events, the stored title, a failing title model and a rename made while the
title was being written.
"""

from __future__ import annotations

import asyncio
import json

import httpx
from chatkit.types import ThreadCreatedEvent, ThreadUpdatedEvent
from chatkit_backend.caller import Caller
from chatkit_backend.store import PostgresStore

from tests.e2e.chat.chat_support import (
    EVENTS,
    headers_for,
    post,
    sse_messages,
    stream,
    text_deltas,
    user_input,
)
from tests.support.fake_openai import Api, FakeOpenAI, Reply, error

FIRST_MESSAGE = "Plan the garden party for Saturday afternoon, with a long list of snacks"
CUT = "Plan the garden party for Saturday afternoon, with a long…"


def create(text: str) -> dict[str, object]:
    return {"type": "threads.create", "params": {"input": user_input(text)}}


async def test_the_first_answer_brings_a_generated_title(
    api: Api, api_client: httpx.AsyncClient, fake: FakeOpenAI, alice: Caller, store: PostgresStore
) -> None:
    result = await stream(api_client, alice, create(FIRST_MESSAGE))

    assert "".join(text_deltas(result.events)) == f"Re: {FIRST_MESSAGE}"
    titles = [e.thread.title for e in result.events if isinstance(e, ThreadUpdatedEvent)]
    assert titles == [CUT, "About Plan the garden"]
    assert (await store.load_thread(result.thread_id, alice)).title == "About Plan the garden"

    (request,) = fake.unstreamed.received
    body = request.body
    assert body["model"] == "gpt-4.1-mini"  # TITLE_MODEL unset: the turn's model
    assert request.last_user_text() == FIRST_MESSAGE
    assert alice.user_id not in json.dumps(body)
    if api == "responses":
        assert body["store"] is False
        assert "title" in body["instructions"]
    else:
        assert "store" not in body
        assert body["messages"][0]["role"] == "system"

    # Later turns keep it and ask for no other title.
    later = await stream(
        api_client,
        alice,
        {
            "type": "threads.add_user_message",
            "params": {"thread_id": result.thread_id, "input": user_input("and drinks?")},
        },
    )
    assert not [e for e in later.events if isinstance(e, ThreadUpdatedEvent)]
    assert len(fake.unstreamed.received) == 1


async def test_a_failing_title_model_leaves_the_cut_message_and_the_answer(
    api_client: httpx.AsyncClient, fake: FakeOpenAI, alice: Caller, store: PostgresStore
) -> None:
    fake.unstreamed.queue(*[error(500)] * 3)  # the client's first try and its 2 retries
    result = await stream(api_client, alice, create(FIRST_MESSAGE))

    assert "".join(text_deltas(result.events)) == f"Re: {FIRST_MESSAGE}"
    assert "error" not in [event.type for event in result.events]
    titles = [e.thread.title for e in result.events if isinstance(e, ThreadUpdatedEvent)]
    assert titles == [CUT]
    assert (await store.load_thread(result.thread_id, alice)).title == CUT
    assert len(fake.unstreamed.received) == 3


async def test_a_rename_while_the_title_is_written_is_never_overwritten(
    api_client: httpx.AsyncClient, fake: FakeOpenAI, alice: Caller, store: PostgresStore
) -> None:
    fake.unstreamed.queue(Reply(deltas=("Generated",), hang=1.0))
    titles: list[str | None] = []
    async with api_client.stream(
        "POST", "/chatkit", json=create(FIRST_MESSAGE), headers=headers_for(alice)
    ) as response:
        async for message in sse_messages(response):
            event = EVENTS.validate_json(message["data"])
            if isinstance(event, ThreadCreatedEvent):
                thread_id = event.thread.id
                while not fake.unstreamed.received:  # noqa: ASYNC110 (the title request reached the fake)
                    await asyncio.sleep(0.02)
                renamed = await post(
                    api_client,
                    alice,
                    {
                        "type": "threads.update",
                        "params": {"thread_id": thread_id, "title": "My party"},
                    },
                )
                assert renamed.status_code == 200, renamed.text
            elif isinstance(event, ThreadUpdatedEvent):
                titles.append(event.thread.title)

    assert titles[-1] == "My party"
    stored = await store.load_thread(thread_id, alice)
    assert stored.title == "My party"
    assert stored.metadata["title_source"] == "user"
