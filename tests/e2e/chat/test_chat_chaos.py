"""Chaos over real HTTP and the real model path: hang-ups at every point of a turn, concurrent
turns on one thread, and the tasks cancelled turns leave behind. Seeded and bounded in time.

Invariant after hang-ups: every user message the server accepted (the client got the response
headers) is stored, no thread is left without a user message, and every thread stays usable.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import random
import time
from collections.abc import Callable

import httpx
import pytest
from chatkit.types import AssistantMessageItem, UserMessageItem
from chatkit_backend.caller import Caller
from chatkit_backend.store import PostgresStore

from tests.e2e.chat.chat_support import headers_for
from tests.e2e.chat.protocol_clients import PROTOCOLS, Protocol, request_for, send
from tests.support.fake_openai import Api, FakeOpenAI, Recorded, Reply, echo

HANG_UPS = 45
LEAK_TURNS = 30
LEAK_MESSAGES = ("Task was destroyed but it is pending", "Task exception was never retrieved")


def paced_echo(request: Recorded) -> Reply:
    """The echo answer, one event every 5 ms (so hang-ups land mid-stream too)."""
    reply = echo(request)
    return Reply(deltas=(*reply.deltas, " (end)"), pace=0.005)


async def hang_up_after(
    client: httpx.AsyncClient,
    caller: Caller,
    protocol: Protocol,
    message: str,
    thread: str | None,
    seconds: float,
) -> bool:
    """Send, then drop the connection after ``seconds``; True if the headers had arrived."""
    path, options = request_for(protocol, message, thread)
    accepted = False

    async def talk() -> None:
        nonlocal accepted
        async with client.stream("POST", path, headers=headers_for(caller), **options) as response:
            accepted = response.status_code == 200
            async for _ in response.aiter_raw():
                pass

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(talk(), seconds)
    return accepted


async def user_messages(store: PostgresStore, caller: Caller) -> dict[str, list[str]]:
    """Thread id -> the user messages stored in it."""
    threads = (await store.load_threads(100, None, "asc", caller)).data
    found: dict[str, list[str]] = {}
    for thread in threads:
        items = (await store.load_thread_items(thread.id, None, 100, "asc", caller)).data
        found[thread.id] = [
            part.text
            for item in items
            if isinstance(item, UserMessageItem)
            for part in item.content
        ]
    return found


async def test_hang_ups_at_every_point_lose_no_accepted_message(
    api: Api,
    api_client: httpx.AsyncClient,
    fake: FakeOpenAI,
    store: PostgresStore,
    new_user: Callable[[], Caller],
) -> None:
    fake.reset(paced_echo)
    rng = random.Random(f"hang-ups-{api}")
    caller = new_user()
    existing = (await send(api_client, caller, "chatkit", "the first message")).thread_id
    accepted: list[str] = []
    started = time.monotonic()
    for case in range(HANG_UPS):
        protocol = rng.choice(PROTOCOLS)
        thread = existing if rng.random() < 0.5 else None
        message = f"case {case} via {protocol}"
        # 0-250 ms: before the first byte, mid-stream and after the last delta all happen.
        if await hang_up_after(api_client, caller, protocol, message, thread, rng.uniform(0, 0.25)):
            accepted.append(message)
    await asyncio.sleep(1.0)  # let the cancelled turns finish their writes

    stored = await user_messages(store, caller)
    everything = [text for texts in stored.values() for text in texts]
    lost = [message for message in accepted if message not in everything]
    empty = [thread for thread, texts in stored.items() if not texts]
    print(f"{api}: {HANG_UPS} hang-ups, {len(accepted)} accepted, {len(lost)} lost")
    assert lost == []
    assert empty == []
    assert accepted  # the delays do reach past the headers
    for thread in rng.sample(sorted(stored), min(3, len(stored))):
        follow_up = await send(api_client, caller, "chatkit", "still there?", thread)
        assert (follow_up.answer, follow_up.errors) == ("Re: still there? (end)", [])
    assert time.monotonic() - started < 30


async def test_concurrent_turns_on_one_thread_each_answer_their_own_message(
    api: Api, api_client: httpx.AsyncClient, fake: FakeOpenAI, store: PostgresStore, alice: Caller
) -> None:
    thread = (await send(api_client, alice, "chatkit", "start")).thread_id
    messages = [f"question number {index}" for index in range(8)]

    turns = await asyncio.gather(
        *(
            send(api_client, alice, PROTOCOLS[i % 3], text, thread)
            for i, text in enumerate(messages)
        )
    )

    for message, turn in zip(messages, turns, strict=True):
        assert (turn.answer, turn.errors) == (f"Re: {message}", [])
    for request in fake.requests[1:]:
        seen = request.transcript()
        assert seen[-1][0] == "user"
        assert seen[-1][1] in messages
    items = (await store.load_thread_items(thread or "", None, 100, "asc", alice)).data
    answers = [item for item in items if isinstance(item, AssistantMessageItem)]
    assert len(answers) == len(messages) + 1


async def test_cancelled_turns_leave_no_task_behind(
    api: Api,
    api_client: httpx.AsyncClient,
    fake: FakeOpenAI,
    alice: Caller,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake.reset(paced_echo)
    caplog.set_level(logging.ERROR, logger="asyncio")
    thread = (await send(api_client, alice, "chatkit", "start")).thread_id
    for turn in range(LEAK_TURNS):
        await hang_up_after(api_client, alice, PROTOCOLS[turn % 3], f"turn {turn}", thread, 0.03)
    await asyncio.sleep(0.5)
    gc.collect()
    await asyncio.sleep(0.2)  # the server loop logs what the collection found

    leaked = [r for r in caplog.records if r.getMessage().startswith(LEAK_MESSAGES)]
    print(f"{api}: {LEAK_TURNS} cancelled turns, {len(leaked)} leaked tasks")
    assert leaked == []
