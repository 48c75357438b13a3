"""Client tools (``CLIENT_TOOLS``) over real HTTP, the model being the fake server on both APIs.

The model calls the declared tool; the turn ends with a pending ``client_tool_call`` item and no
server tool record; ``threads.add_client_tool_output`` continues the turn with the client's
answer; the call reaches the model exactly once in later histories, which both APIs accept.
"""

from __future__ import annotations

from typing import Any

import httpx
from chatkit.types import ClientToolCallItem, HiddenContextItem, ThreadItemDoneEvent
from chatkit_backend.caller import Caller
from chatkit_backend.settings import ClientToolSpec
from chatkit_backend.store import PostgresStore

from tests.e2e.chat.chat_support import (
    ChatServerThread,
    factory_with,
    server_settings,
    stream,
    text_deltas,
    user_input,
)
from tests.support.fake_openai import FakeOpenAI, Recorded, call, text

TIME_ZONE = ClientToolSpec(
    name="get_time_zone",
    description="The IANA time zone of the user's browser.",
    parameters={"type": "object", "properties": {}, "additionalProperties": False},
)


SERVER_SETTINGS = {"client_tools": [TIME_ZONE]}


def function_call_ids(request: Recorded) -> list[str]:
    """The call id of every function call in the history the model was sent."""
    if request.api == "responses":
        return [
            item["call_id"] for item in request.body["input"] if item.get("type") == "function_call"
        ]
    return [
        tool_call["id"]
        for message in request.body["messages"]
        for tool_call in message.get("tool_calls") or []
    ]


async def test_client_tool_call_ends_the_turn_and_its_output_continues_it(
    module_http: httpx.AsyncClient, fake: FakeOpenAI, alice: Caller, store: PostgresStore
) -> None:
    fake.script(call("get_time_zone", {}, before=("Let me check your time zone.",)))
    first = await stream(
        module_http,
        alice,
        {"type": "threads.create", "params": {"input": user_input("What time zone am I in?")}},
    )
    assert first.status_code == 200, first.datas
    assert "get_time_zone" in fake.requests[-1].tool_names
    done = [e.item for e in first.events if isinstance(e, ThreadItemDoneEvent)]
    pending = done[-1]
    assert isinstance(pending, ClientToolCallItem)
    assert (pending.name, pending.arguments, pending.status) == ("get_time_zone", {}, "pending")
    assert pending.id != pending.call_id
    thread_id = first.thread_id
    stored = (await store.load_thread_items(thread_id, None, 50, "asc", alice)).data
    assert not [i for i in stored if isinstance(i, HiddenContextItem)]  # no server tool record
    assert [i.id for i in stored if isinstance(i, ClientToolCallItem)] == [pending.id]

    fake.script(text("You are in ", "Europe/Paris."))
    resumed = await stream(
        module_http,
        alice,
        {
            "type": "threads.add_client_tool_output",
            "params": {"thread_id": thread_id, "result": {"time_zone": "Europe/Paris"}},
        },
    )

    assert resumed.status_code == 200, resumed.datas
    continued = fake.requests[-1]
    assert function_call_ids(continued) == [pending.call_id]
    assert ("result", '{"time_zone": "Europe/Paris"}') in continued.transcript()
    (completed,) = [
        i
        for i in (await store.load_thread_items(thread_id, None, 50, "asc", alice)).data
        if isinstance(i, ClientToolCallItem)
    ]
    assert (completed.status, completed.output) == ("completed", {"time_zone": "Europe/Paris"})

    fake.script(text("Anytime."))
    later = await stream(
        module_http,
        alice,
        {
            "type": "threads.add_user_message",
            "params": {"thread_id": thread_id, "input": user_input("Thanks!")},
        },
    )
    assert later.status_code == 200, later.datas
    assert function_call_ids(fake.requests[-1]) == [pending.call_id]
    transcript: list[tuple[str, Any]] = fake.requests[-1].transcript()
    assert transcript[-1] == ("user", "Thanks!")
    assert ("assistant", "You are in Europe/Paris.") in transcript


async def test_offline_model_calls_the_declared_client_tool(
    pg_url: str, alice: Caller, store: PostgresStore
) -> None:
    """With no model key (``make dev``) and ``get_time_zone`` declared, the offline model calls
    it for a time-zone question and answers from the client's output."""
    settings = server_settings(pg_url, client_tools=[TIME_ZONE])
    server = ChatServerThread(settings, factory_with(None)).start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            asked = await stream(
                client,
                alice,
                {"type": "threads.create", "params": {"input": user_input("My time zone?")}},
            )
            pending = [e.item for e in asked.events if isinstance(e, ThreadItemDoneEvent)][-1]
            assert isinstance(pending, ClientToolCallItem)
            assert (pending.name, pending.status) == ("get_time_zone", "pending")
            answered = await stream(
                client,
                alice,
                {
                    "type": "threads.add_client_tool_output",
                    "params": {"thread_id": asked.thread_id, "result": {"time_zone": "Asia/Tokyo"}},
                },
            )
    finally:
        server.stop()
    assert answered.status_code == 200
    assert "Asia/Tokyo" in "".join(text_deltas(answered.events))
