"""Fair use over real HTTP: turn rate, daily tokens, bounded model input, auth before the body.

The chat app under uvicorn (one server per model API), its model the fake OpenAI server over
HTTP, PostgreSQL underneath, and an injected clock for the limits so minutes and UTC days pass at
the test's word. What the model was sent is read from the fake: the history bound, the tool
output cap, the output token cap and the per-user ``safety_identifier`` are visible there.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from chat_app.mcp_servers import truncated_note
from chat_app.model_provider import safety_identifier
from chat_app.task_repository import TaskRepository
from chat_app.turn_limits import DAY_SECONDS, TurnLimits
from chatkit_backend.attachments.policy import MAX_ATTACHMENT_REFERENCES
from chatkit_backend.caller import Caller
from chatkit_backend.db import Database
from chatkit_backend.store import PostgresStore
from sqlalchemy import event

from tests.e2e.chat.chat_support import ChatServerThread, headers_for, servers_per_api, user_input
from tests.e2e.chat.protocol_clients import PROTOCOLS, Protocol, request_for, send
from tests.integration.core.store.store_samples import saved_thread, user_message
from tests.support.clock import FakeClock as Clock
from tests.support.clock import into_a_utc_day
from tests.support.fake_openai import Api, FakeOpenAI, call, text

START = into_a_utc_day(7200)  # two hours into a UTC day


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


Servers = Callable[..., dict[Api, ChatServerThread]]


@pytest.fixture
def limited(pg_url: str, fake: FakeOpenAI, clock: Clock) -> Iterator[Servers]:
    """Start one server per API with the given settings and the test's clock."""
    stack: list[Any] = []

    def start(**settings: Any) -> dict[Api, ChatServerThread]:
        context = servers_per_api(pg_url, fake, clock, **settings)
        stack.append(context)
        return context.__enter__()

    yield start
    for context in reversed(stack):
        context.__exit__(None, None, None)


async def thread_count(client: httpx.AsyncClient, user: Caller) -> int:
    listed = await client.post(
        "/chatkit",
        json={"type": "threads.list", "params": {"limit": 50}},
        headers=headers_for(user),
    )
    return len(listed.json()["data"])


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_the_turn_past_the_rate_is_refused_and_not_stored(
    limited: Servers, fake: FakeOpenAI, clock: Clock, protocol: Protocol, alice: Caller
) -> None:
    servers = limited(user_turns_per_minute=3)
    async with httpx.AsyncClient(base_url=servers["chat_completions"].url, timeout=30) as client:
        for number in range(3):
            turn = await send(client, alice, protocol, f"turn {number}")
            assert (turn.status, turn.errors) == (200, [])
        path, options = request_for(protocol, "one too many", None)
        refused = await client.post(path, headers=headers_for(alice), **options)
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "20"
        assert refused.json() == {
            "detail": "Too many turns (at most 3 a minute): try again shortly"
        }
        assert len(fake.requests) == 3
        assert await thread_count(client, alice) == 3  # the refused message was not stored

        clock.now += 20  # one turn's worth of refill
        again = await send(client, alice, protocol, "one too many")
        assert (again.status, again.errors) == (200, [])
        assert again.answer == "Re: one too many"
        assert await thread_count(client, alice) == 4


async def add_message(
    client: httpx.AsyncClient, user: Caller, thread_id: str | None, text: str
) -> httpx.Response:
    """A ChatKit ``threads.add_user_message``, answered whole (a refusal is a JSON error)."""
    return await client.post(
        "/chatkit",
        json={
            "type": "threads.add_user_message",
            "params": {"thread_id": thread_id, "input": user_input(text)},
        },
        headers=headers_for(user),
    )


async def test_the_daily_budget_holds_until_midnight_utc(
    limited: Servers, fake: FakeOpenAI, clock: Clock, api: Api, alice: Caller
) -> None:
    """The fake reports 18 tokens per call on both APIs; the budget is 30."""
    servers = limited(user_tokens_per_day=30)
    async with httpx.AsyncClient(base_url=servers[api].url, timeout=30) as client:
        first = await send(client, alice, "chatkit", "hello")
        thread = first.thread_id
        assert first.errors == []
        second = await send(client, alice, "chatkit", "more", thread)  # 18 < 30: admitted
        assert second.errors == []
        for wait in (DAY_SECONDS - 7200, 1):
            clock.now = START + DAY_SECONDS - 7200 - wait  # now, then a second before midnight
            refused = await add_message(client, alice, thread, "and more")
            assert refused.status_code == 429
            assert refused.headers["retry-after"] == str(wait)
            assert "Daily usage limit" in refused.json()["detail"]
        assert len(fake.requests) == 2
        clock.now += 1  # midnight UTC
        third = await send(client, alice, "chatkit", "a new day", thread)
        assert (third.status, third.errors) == (200, [])


def count_statements(database: Database) -> Callable[[], int]:
    """Counts the SQL statements the server's engine executes from now on."""
    counted = [0]

    def on_execute(*_: Any) -> None:
        counted[0] += 1

    event.listen(database.engine.sync_engine, "before_cursor_execute", on_execute)
    return lambda: counted[0]


async def test_bypasses_are_refused_before_the_model(
    limited: Servers, fake: FakeOpenAI, alice: Caller
) -> None:
    server = limited(max_message_chars=1000)["responses"]
    statements = count_statements(server.database)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        tagged = user_input("short")
        tagged["content"].append(
            {"type": "input_tag", "id": "t1", "text": "doc", "data": {"body": "x" * 5000}}
        )
        quoted = {**user_input("short"), "quoted_text": "q" * 5000}
        for message in (tagged, quoted):
            answer = await client.post(
                "/chatkit",
                json={"type": "threads.create", "params": {"input": message}},
                headers=headers_for(alice),
            )
            assert answer.status_code == 413, answer.text
            assert "at most 1000" in answer.json()["detail"]
        assert statements() == 0

        for copies, status in ((2000, 400), (MAX_ATTACHMENT_REFERENCES, 404)):
            repeated = user_input("look", attachments=["atc_missing"] * copies)
            answer = await client.post(
                "/chatkit",
                json={"type": "threads.create", "params": {"input": repeated}},
                headers=headers_for(alice),
            )
            assert answer.status_code == status, answer.text
        assert 1 <= statements() <= 2  # the one id loaded once, whatever the repeats
    assert fake.requests == []
    assert fake.pending == 0


async def test_history_size_tool_output_and_model_settings_in_the_request(
    limited: Servers, fake: FakeOpenAI, api: Api, alice: Caller, pg_database: Database
) -> None:
    servers = limited(
        history_max_chars=3000, tool_output_max_chars=300, model_max_output_tokens=123
    )
    tasks = TaskRepository(pg_database)
    for number in range(5):
        await tasks.add(alice.user_id, f"task {number} " + "t" * 400)
    fake.script(text("ok one"), text("ok two"), call("list_tasks", {}), text("listed"))
    async with httpx.AsyncClient(base_url=servers[api].url, timeout=30) as client:
        first = await send(client, alice, "chatkit", "a" * 1000)
        thread = first.thread_id
        await send(client, alice, "chatkit", "b" * 1000, thread)
        last = await send(client, alice, "chatkit", "c" * 1000, thread)
        assert last.errors == []
    calling, answering = fake.requests[-2:]
    users = [said for role, said in calling.transcript() if role == "user"]
    assert users == ["b" * 1000, "c" * 1000]  # the oldest dropped, the turn's own kept
    [result] = [said for role, said in answering.transcript() if role == "result"]
    assert result.endswith(truncated_note(300))
    assert len(result) == 300 + len(truncated_note(300))

    settings = servers[api].settings
    for request in fake.requests:
        assert request.body["safety_identifier"] == safety_identifier(settings, alice)
        assert alice.user_id not in request.body["safety_identifier"]
        cap = "max_output_tokens" if api == "responses" else "max_tokens"
        assert request.body[cap] == 123


async def test_an_unauthenticated_body_is_answered_before_it_is_sent(
    limited: Servers, fake: FakeOpenAI
) -> None:
    """A 1 MB body is announced, not sent: the 401 arrives anyway, so none of it was read."""
    server = limited()["responses"]
    host, port = server.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(
            b"POST /chatkit HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000000\r\n\r\n"
        )
        await writer.drain()
        status = await asyncio.wait_for(reader.readline(), timeout=30)
        headers = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=30)
    finally:
        writer.close()
    assert status.startswith(b"HTTP/1.1 401"), status
    assert b"www-authenticate: Bearer" in headers.lower().replace(b"bearer", b"Bearer")
    assert fake.requests == []
    with socket.create_connection((host, int(port))) as raw:  # a bad token: the same
        raw.sendall(
            b"POST /chatkit HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer nonsense\r\n"
            b"Content-Length: 1000000\r\n\r\n"
        )
        raw.settimeout(30)
        assert raw.recv(64).startswith(b"HTTP/1.1 401")


async def test_the_edge_header_carries_the_token(limited: Servers, alice: Caller) -> None:
    """Behind the edge stack CloudFront signs ``Authorization``: the token comes as
    ``X-Chat-Authorization`` instead, and wins over whatever ``Authorization`` holds."""
    server = limited()["responses"]
    token = headers_for(alice)["Authorization"]
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        listed = await client.post(
            "/chatkit",
            json={"type": "threads.list", "params": {"limit": 5}},
            headers={"X-Chat-Authorization": token, "Authorization": "AWS4-HMAC-SHA256 x"},
        )
        assert listed.status_code == 200, listed.text
        signed_only = await client.post(
            "/chatkit",
            json={"type": "threads.list", "params": {"limit": 5}},
            headers={"Authorization": "AWS4-HMAC-SHA256 x"},
        )
        assert signed_only.status_code == 401


async def thread_items(client: httpx.AsyncClient, user: Caller, thread_id: str) -> list[Any]:
    listed = await client.post(
        "/chatkit",
        json={"type": "items.list", "params": {"thread_id": thread_id, "limit": 50}},
        headers=headers_for(user),
    )
    assert listed.status_code == 200, listed.text
    return list(listed.json()["data"])


async def test_a_retry_past_the_rate_is_refused_before_the_model(
    limited: Servers, fake: FakeOpenAI, alice: Caller, pg_database: Database
) -> None:
    """A retry of a thread's last item, its message, writes nothing before it is answered: the
    model call itself waits for the admission."""
    server = limited(user_turns_per_minute=1)["chat_completions"]
    store = PostgresStore(pg_database)
    thread = await saved_thread(store, alice)
    question = user_message(thread.id, "unanswered")
    await store.add_thread_item(thread.id, question, alice)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        first = await send(client, alice, "chatkit", "hello")  # the minute's one turn
        assert first.errors == []
        retried = await client.post(
            "/chatkit",
            json={
                "type": "threads.retry_after_item",
                "params": {"thread_id": thread.id, "item_id": question.id},
            },
            headers=headers_for(alice),
        )
        assert retried.status_code == 429, retried.text
        assert len(fake.requests) == 1
        items = await thread_items(client, alice, thread.id)
        assert [item["id"] for item in items] == [question.id]


async def test_the_admission_runs_while_the_thread_is_read_and_gates_every_write(
    limited: Servers, fake: FakeOpenAI, alice: Caller, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Held at its admission, a turn has read its thread but stored nothing and called no
    model; released, it completes as usual."""
    server = limited(user_turns_per_minute=100)["chat_completions"]
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        first = await send(client, alice, "chatkit", "hello")
        assert first.errors == []
        assert first.thread_id is not None
        before = await thread_items(client, alice, first.thread_id)

        release = threading.Event()
        seen: list[str] = []
        admit = TurnLimits._admit
        load_thread = PostgresStore.load_thread

        async def held_admit(self: TurnLimits, *args: Any) -> None:
            seen.append("admission")
            await asyncio.to_thread(release.wait, 30)
            await admit(self, *args)

        async def noted_load(self: PostgresStore, *args: Any, **kwargs: Any) -> Any:
            seen.append("thread read")
            return await load_thread(self, *args, **kwargs)

        monkeypatch.setattr(TurnLimits, "_admit", held_admit)
        monkeypatch.setattr(PostgresStore, "load_thread", noted_load)
        turn = asyncio.create_task(send(client, alice, "chatkit", "again", first.thread_id))
        for _ in range(500):
            if {"admission", "thread read"} <= set(seen):
                break
            await asyncio.sleep(0.01)
        assert {"admission", "thread read"} <= set(seen)
        await asyncio.sleep(0.05)  # room for a write that should not happen
        assert await thread_items(client, alice, first.thread_id) == before
        assert len(fake.requests) == 1
        release.set()
        again = await turn
        assert (again.status, again.errors, again.answer) == (200, [], "Re: again")
        assert len(await thread_items(client, alice, first.thread_id)) == len(before) + 2


async def test_a_turn_refused_after_its_admission_gives_its_lease_back(
    limited: Servers, fake: FakeOpenAI, alice: Caller, bob: Caller
) -> None:
    """With one turn at a time, turns admitted while their thread is read and then refused (a
    foreign or missing thread: 404) leave the user's slot free: the next turns run."""
    server = limited(user_concurrent_turns=1)["chat_completions"]
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        bobs = await send(client, bob, "chatkit", "bob's thread")
        assert bobs.thread_id is not None
        for thread_id in (bobs.thread_id, "thr_missing"):
            refused = await add_message(client, alice, thread_id, "hello")
            assert refused.status_code == 404, refused.text
        mine = await send(client, alice, "chatkit", "mine")
        assert (mine.status, mine.errors, mine.answer) == (200, [], "Re: mine")
        again = await send(client, alice, "chatkit", "again", mine.thread_id)
        assert (again.status, again.errors) == (200, [])
