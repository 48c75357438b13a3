"""A new message's insert runs while the model is called, not before it, and the response still
starts only once the message is stored.

The test holds the thread's row locked in a transaction of its own: the insert (which bumps the
thread's ``updated_at``) then waits in PostgreSQL. Meanwhile the model must already have been
asked, and the client must have no response yet. Released, the turn answers and both messages
are stored in order; the insert's connection killed instead, the client gets a 503 JSON error,
nothing of the turn is stored and the thread goes on. Real server, real HTTP, the real model path
to the fake, both APIs.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from chatkit.types import AssistantMessageItem, UserMessageItem
from chatkit_backend.caller import Caller
from chatkit_backend.db import Database
from chatkit_backend.errors import DatabaseUnavailable
from chatkit_backend.store import PostgresStore
from sqlalchemy import text

from tests.e2e.chat.chat_support import eventually, headers_for, stream, text_deltas, user_input
from tests.support.fake_openai import FakeOpenAI
from tests.support.fake_openai import text as reply_text
from tests.support.log_capture import captured_log

pytestmark = pytest.mark.postgres_only

WAITING_INSERT = text(
    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
    "AND wait_event_type = 'Lock' AND query ILIKE '%INSERT INTO thread_items%'"
)


@asynccontextmanager
async def thread_row_locked(database: Database, thread_id: str) -> AsyncIterator[None]:
    async with database.session() as session:
        await session.execute(
            text("SELECT 1 FROM threads WHERE id = :id FOR UPDATE"), {"id": thread_id}
        )
        yield


async def waiting_insert(database: Database) -> int | None:
    """The server process of an item insert waiting for a lock, if there is one."""
    async with database.autocommit() as session:
        return (await session.execute(WAITING_INSERT)).scalar()


def add_message(thread_id: str, said: str) -> dict[str, Any]:
    return {
        "type": "threads.add_user_message",
        "params": {"thread_id": thread_id, "input": user_input(said)},
    }


async def a_thread(client: httpx.AsyncClient, user: Caller) -> str:
    created = await stream(
        client, user, {"type": "threads.create", "params": {"input": user_input("Hello")}}
    )
    assert created.status_code == 200
    return created.thread_id


async def stored_kinds(store: PostgresStore, thread_id: str, user: Caller) -> list[str]:
    page = await store.load_thread_items(thread_id, None, 20, "asc", user)
    kinds = []
    for item in page.data:
        if isinstance(item, UserMessageItem):
            kinds.append("user: " + "".join(getattr(part, "text", "") for part in item.content))
        elif isinstance(item, AssistantMessageItem):
            kinds.append("assistant: " + "".join(part.text for part in item.content))
    return kinds


@dataclass
class Scene:
    """A thread of alice's on the server of one API, the fake reset after its first turn."""

    client: httpx.AsyncClient
    fake: FakeOpenAI
    store: PostgresStore
    database: Database
    user: Caller
    thread_id: str


@pytest.fixture
async def scene(
    api_client: httpx.AsyncClient,
    fake: FakeOpenAI,
    store: PostgresStore,
    pg_database: Database,
    alice: Caller,
) -> Scene:
    thread_id = await a_thread(api_client, alice)
    fake.reset()
    return Scene(api_client, fake, store, pg_database, alice, thread_id)


async def sent_until_the_insert_waits(scene: Scene, said: str) -> tuple[asyncio.Task[Any], int]:
    """Send ``said`` (the thread's row locked) and wait until the model was asked and the insert
    waits: the task that ends when the response's head has arrived, and the insert's process."""
    body = add_message(scene.thread_id, said)
    request = scene.client.build_request(
        "POST", "/chatkit", json=body, headers=headers_for(scene.user)
    )
    head = asyncio.ensure_future(scene.client.send(request, stream=True))
    await eventually(lambda: scene.fake.requests)
    pid = await eventually(lambda: waiting_insert(scene.database))
    return head, pid


async def test_the_model_is_asked_while_the_insert_waits_and_the_answer_follows_it(
    scene: Scene,
) -> None:
    async with thread_row_locked(scene.database, scene.thread_id):
        head, _ = await sent_until_the_insert_waits(scene, "While locked")
        await asyncio.sleep(0.2)
        assert not head.done()  # no response before the message is stored
        assert scene.fake.requests[0].last_user_text() == "While locked"
    response = await asyncio.wait_for(head, 10)
    answer = (await response.aread()).decode()
    await response.aclose()

    assert response.status_code == 200
    assert "While locked" in answer
    assert await stored_kinds(scene.store, scene.thread_id, scene.user) == [
        "user: Hello",
        "assistant: Re: Hello",
        "user: While locked",
        "assistant: Re: While locked",
    ]


async def test_a_failed_insert_is_a_503_with_nothing_stored_and_the_thread_goes_on(
    scene: Scene,
) -> None:
    scene.fake.script(reply_text("Never ", "shown", hang=1.0))

    with captured_log() as log:
        async with thread_row_locked(scene.database, scene.thread_id):
            head, pid = await sent_until_the_insert_waits(scene, "Lost line")
            async with scene.database.autocommit() as session:
                await session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            response = await asyncio.wait_for(head, 10)
            await response.aread()
        await asyncio.sleep(0.2)  # the stopped turn's own end, logged or not

    assert response.status_code == 503, response.text
    assert "Traceback" not in log.getvalue()
    assert response.json() == {"detail": DatabaseUnavailable.default_message}
    assert await stored_kinds(scene.store, scene.thread_id, scene.user) == [
        "user: Hello",
        "assistant: Re: Hello",
    ]

    again = await stream(scene.client, scene.user, add_message(scene.thread_id, "Once more"))
    assert again.status_code == 200
    assert "".join(text_deltas(again.events)) == "Re: Once more"
    assert await stored_kinds(scene.store, scene.thread_id, scene.user) == [
        "user: Hello",
        "assistant: Re: Hello",
        "user: Once more",
        "assistant: Re: Once more",
    ]
