"""A turn that fails at the model leaves no asyncio task behind.

When the model's stream fails (an error answer, a cut stream, a chunk that is not JSON, with or
without a tool call before it), the ChatKit SDK's merge of the run's events with its own queue
must not be abandoned with a task still waiting on that queue: such a task is destroyed pending
later, and asyncio logs "Task was destroyed but it is pending!". Real servers, the real model
path over HTTP to the fake, both APIs.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterator

import httpx
import pytest
from chatkit.types import ErrorEvent
from chatkit_backend.caller import Caller

from tests.e2e.chat.chat_support import stream, user_input
from tests.support.fake_openai import FakeOpenAI, Reply, call, error, text

FAILED_TURNS = 25
"""Per API: 50 failed turns in all."""

FAILURES: tuple[tuple[Reply, ...], ...] = (
    (error(400),),
    (text("Half ", "an answer", cut_after=1),),
    (text("Half ", "an answer", invalid_after=1),),
    (call("list_tasks", {}), text("After ", "the tool", cut_after=1)),
    (call("list_tasks", {}, before=("Let me look. ",)), text("Bad ", "chunk", invalid_after=1)),
)


class Destroyed(logging.Handler):
    """The "destroyed but pending" records asyncio logs."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if "destroyed but it is pending" in record.getMessage():
            self.messages.append(record.getMessage())


@pytest.fixture
def destroyed() -> Iterator[Destroyed]:
    handler = Destroyed()
    logger = logging.getLogger("asyncio")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


async def test_failed_turns_leave_no_pending_task(
    api_client: httpx.AsyncClient, fake: FakeOpenAI, alice: Caller, destroyed: Destroyed
) -> None:
    created = await stream(
        api_client,
        alice,
        {"type": "threads.create", "params": {"input": user_input("Hello")}},
    )
    thread_id = created.events[0].thread.id  # type: ignore[union-attr]
    for turn in range(FAILED_TURNS):
        fake.reset()
        fake.script(*FAILURES[turn % len(FAILURES)])
        failed = await stream(
            api_client,
            alice,
            {
                "type": "threads.add_user_message",
                "params": {"thread_id": thread_id, "input": user_input(f"Turn {turn}")},
            },
        )
        assert isinstance(failed.events[-1], ErrorEvent), failed.events[-1]
    gc.collect()  # a task left pending is destroyed (and logged) when collected

    assert destroyed.messages == []
