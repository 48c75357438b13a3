"""Turns at once per user, across two chat processes on one PostgreSQL database.

Each process is the chat function as the Lambda Web Adapter starts it (``run.sh``, real uvicorn),
its model the fake OpenAI server over HTTP, so the limit can only hold through the database:
while user A's turn runs on one process, a second turn of A on either process is a 429 with
``Retry-After`` on every protocol, the model is not called and nothing is stored, reads still
answer, and user B's turn goes through. A starts again once the turn ends, once the client hung
up (before the model would have answered), and once a killed process's lease has expired.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from chatkit_backend.caller import Caller

from tests.e2e.chat.chat_support import headers_for
from tests.e2e.chat.protocol_clients import PROTOCOLS, request_for, send
from tests.support.fake_openai import FakeOpenAI, text
from tests.support.server_process import ChatEntryProcess
from tests.support.tokens import TEST_JWT_SECRET

Start = Callable[[float], list[ChatEntryProcess]]


@pytest.fixture
def start_processes(pg_url: str, fake: FakeOpenAI, tmp_path: Path) -> Iterator[Start]:
    """Two chat processes, one turn at a time per user, turns stopped after ``timeout``."""
    started: list[ChatEntryProcess] = []

    def start(timeout: float) -> list[ChatEntryProcess]:
        env = {
            "DATABASE_URL": pg_url,
            "JWT_SECRET": TEST_JWT_SECRET,
            "OPENAI_BASE_URL": fake.base_url,
            "OPENAI_API": "chat_completions",
            "USER_CONCURRENT_TURNS": "1",
            "USER_TURNS_PER_MINUTE": "0",
            "USER_TOKENS_PER_DAY": "0",
            "AGENT_TURN_TIMEOUT_SECONDS": str(timeout),
            "LOG_LEVEL": "WARNING",
        }
        pair = [ChatEntryProcess(env, tmp_path / f"chat-{len(started) + i}.log") for i in (0, 1)]
        started.extend(pair)
        for process in pair:
            process.wait_ready()
        return pair

    yield start
    for process in started:
        process.stop()


async def model_called(fake: FakeOpenAI, times: int) -> None:
    """Until the fake has received ``times`` requests (the turn is then inside the model)."""
    deadline = time.monotonic() + 30
    while len(fake.requests) < times:
        assert time.monotonic() < deadline, "the model was never called"
        await asyncio.sleep(0.05)


async def refused(client: httpx.AsyncClient, url: str, user: Caller) -> list[httpx.Response]:
    """A turn of ``user`` on ``url`` by every protocol: the responses (all expected 429)."""
    answers = []
    for protocol in PROTOCOLS:
        path, options = request_for(protocol, f"again by {protocol}", None)
        answers.append(await client.post(url + path, headers=headers_for(user), **options))
    return answers


async def thread_count(client: httpx.AsyncClient, url: str, user: Caller) -> int:
    listed = await client.post(
        f"{url}/chatkit",
        json={"type": "threads.list", "params": {"limit": 50}},
        headers=headers_for(user),
    )
    assert listed.status_code == 200  # reads are never limited
    return len(listed.json()["data"])


async def admitted_again(client: httpx.AsyncClient, url: str, user: Caller) -> httpx.Response:
    """Retry a turn of ``user`` until it is admitted (a lease ends asynchronously)."""
    deadline = time.monotonic() + 20
    while True:
        path, options = request_for("simple", "are you free now?", None)
        response = await client.post(url + path, headers=headers_for(user), **options)
        if response.status_code != 429 or time.monotonic() > deadline:
            return response
        await asyncio.sleep(0.2)


async def test_a_second_turn_at_once_is_refused_on_either_process(
    start_processes: Start, fake: FakeOpenAI, alice: Caller, bob: Caller
) -> None:
    first, second = start_processes(60)
    fake.script(text("slow ", "answer", hang=6))
    async with (
        httpx.AsyncClient(timeout=60) as client,
        httpx.AsyncClient(base_url=first.url, timeout=60) as on_first,
    ):
        running = asyncio.create_task(send(on_first, alice, "simple", "take your time"))
        await model_called(fake, 1)

        for url in (second.url, first.url):
            for answer in await refused(client, url, alice):
                assert answer.status_code == 429, answer.text
                assert int(answer.headers["retry-after"]) >= 1
                assert "at most 1" in answer.json()["detail"]
        assert len(fake.requests) == 1  # the model was not called for any of them
        assert await thread_count(client, second.url, alice) == 1  # nothing of them stored

        async with httpx.AsyncClient(base_url=second.url, timeout=60) as on_second:
            other = await send(on_second, bob, "chatkit", "hello from bob")
        assert (other.status, other.errors) == (200, [])
        assert other.answer == "Re: hello from bob"

        done = await running
        assert (done.status, done.answer, done.errors) == (200, "slow answer", [])
        after = await client.post(
            f"{second.url}/chatkit", json={"message": "now?"}, headers=headers_for(alice)
        )
        assert after.status_code == 200


async def test_a_hang_up_gives_the_turn_back(
    start_processes: Start, fake: FakeOpenAI, alice: Caller
) -> None:
    first, second = start_processes(60)
    fake.script(text("never ", "read", hang=40))
    async with httpx.AsyncClient(timeout=60) as client:
        async with client.stream(
            "POST", f"{first.url}/chatkit", json={"message": "hi"}, headers=headers_for(alice)
        ) as response:
            assert response.status_code == 200
            await model_called(fake, 1)
            assert all(r.status_code == 429 for r in await refused(client, second.url, alice))
        # The client went away long before the model would answer: the lease is back at once.
        again = await admitted_again(client, second.url, alice)
        assert again.status_code == 200, again.text


async def test_a_killed_process_lease_expires(
    start_processes: Start, fake: FakeOpenAI, alice: Caller, bob: Caller
) -> None:
    first, second = start_processes(2)
    fake.script(text("lost", hang=40))
    async with httpx.AsyncClient(timeout=60) as client:
        async with client.stream(
            "POST", f"{first.url}/chatkit", json={"message": "hi"}, headers=headers_for(alice)
        ) as response:
            assert response.status_code == 200
            await model_called(fake, 1)
            first.process.kill()  # the sandbox dies: nobody gives the lease back
            first.process.wait()
        assert all(r.status_code == 429 for r in await refused(client, second.url, alice))
        assert len(fake.requests) == 1
        again = await admitted_again(client, second.url, alice)  # after twice the timeout
        assert again.status_code == 200, again.text
