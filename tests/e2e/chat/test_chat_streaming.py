"""Streaming behaviour over real HTTP: incremental delivery, tools, and every way a turn can end."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import aclosing, asynccontextmanager
from typing import Any
from unittest.mock import ANY

import httpx
from agents import Agent, Tool, function_tool
from agents.testing import ScriptedModel, assistant_message, function_call
from chat_app.run_tracker import TOOL_FAILED
from chat_app.streaming import FAILURE_MESSAGE, MAX_TURNS_MESSAGE, TIMEOUT_MESSAGE
from chat_app.task_repository import TaskRepository
from chatkit.types import (
    AssistantMessageItem,
    ErrorEvent,
    HiddenContextItem,
    ThreadCreatedEvent,
    ThreadItem,
    ThreadItemAddedEvent,
    ThreadItemDoneEvent,
    ThreadStreamEvent,
    UserMessageItem,
)
from chatkit_backend.caller import Caller
from chatkit_backend.db import Database
from chatkit_backend.store import PostgresStore
from chatkit_backend.tool_calls import ToolCallRecord
from sqlalchemy.pool import QueuePool

from tests.e2e.chat.chat_support import (
    EVENTS,
    ChatServerThread,
    Gate,
    assert_documented_order,
    eventually,
    factory_with,
    headers_for,
    post,
    sse_messages,
    stream,
    streamed_reply,
    task_lines,
    text_deltas,
    tool_workflows,
    user_input,
)


def create(text: str) -> dict[str, Any]:
    return {"type": "threads.create", "params": {"input": user_input(text)}}


def add_message(thread_id: str, text: str) -> dict[str, Any]:
    return {
        "type": "threads.add_user_message",
        "params": {"thread_id": thread_id, "input": user_input(text)},
    }


def deltas(events: Sequence[ThreadStreamEvent]) -> list[str]:
    return text_deltas(events)


def created_thread(events: Sequence[ThreadStreamEvent]) -> str:
    assert isinstance(events[0], ThreadCreatedEvent)
    return events[0].thread.id


async def stored_items(store: PostgresStore, user: Caller, thread_id: str) -> list[Any]:
    return list((await store.load_thread_items(thread_id, None, 50, "asc", user)).data)


def texts(items: Sequence[ThreadItem]) -> list[tuple[str, str]]:
    """(type, text) of user and assistant messages, in thread order."""
    return [
        (item.type, "".join(part.text for part in item.content))
        for item in items
        if isinstance(item, UserMessageItem | AssistantMessageItem)
    ]


def tool_records(items: Sequence[ThreadItem]) -> list[ToolCallRecord]:
    return [
        record
        for item in items
        if isinstance(item, HiddenContextItem)
        and (record := ToolCallRecord.parse(item.content)) is not None
    ]


class ToolAgents:
    """An agent source with plain function tools (the real factory only has the MCP todo tools)."""

    is_offline = True
    client_tool_names: frozenset[str] = frozenset()
    provider = None

    def __init__(self, model: ScriptedModel, tools: list[Tool]) -> None:
        self.model = model
        self.tools = tools

    @asynccontextmanager
    async def open(
        self, request_context: Caller, options: object = None
    ) -> AsyncIterator[Agent[Any]]:
        yield Agent(name="Tester", instructions="Test agent.", model=self.model, tools=self.tools)


# --- delivery --------------------------------------------------------------------------------


async def test_first_delta_reaches_the_client_while_the_model_is_still_producing(
    client: httpx.AsyncClient,
    model: ScriptedModel,
    alice: Caller,
    store: PostgresStore,
    gate: Gate,
) -> None:
    model.enqueue(streamed_reply(["First ", "second ", "third."], gate=gate))
    received: list[ThreadStreamEvent] = []

    async with client.stream(
        "POST", "/chatkit", json=create("Stream please"), headers=headers_for(alice)
    ) as response:
        async for message in sse_messages(response):
            event = EVENTS.validate_json(message["data"])
            received.append(event)
            if deltas([event]) == ["First "]:
                # The model is parked after its first delta, and the client already has it.
                assert gate.reached.is_set()
                assert deltas(received) == ["First "]
                # Meanwhile the user message is stored, and nothing of the answer yet.
                items = await stored_items(store, alice, created_thread(received))
                assert [item.type for item in items] == ["user_message"]
                gate.open()

    assert deltas(received) == ["First ", "second ", "third."]
    assert_documented_order(received, new_thread=True)


async def test_no_database_connection_is_held_while_the_model_streams(
    client: httpx.AsyncClient,
    chat_server: ChatServerThread,
    model: ScriptedModel,
    alice: Caller,
    gate: Gate,
) -> None:
    """A slow model must not pin a pooled connection (RDS connection limits, RDS Proxy pinning)."""
    model.enqueue(streamed_reply(["Thinking ", "slowly."], gate=gate))
    pool = chat_server.database.engine.sync_engine.pool
    assert isinstance(pool, QueuePool)
    held_mid_stream: int | None = None

    async with client.stream(
        "POST", "/chatkit", json=create("Take your time"), headers=headers_for(alice)
    ) as response:
        async for message in sse_messages(response):
            if held_mid_stream is None and "text_delta" in message["data"]:
                assert gate.reached.is_set()  # the model is parked mid-answer
                held_mid_stream = pool.checkedout()
                gate.open()

    assert held_mid_stream == 0


# --- tools -----------------------------------------------------------------------------------


async def test_tool_call_is_shown_persisted_and_remembered(
    client: httpx.AsyncClient,
    model: ScriptedModel,
    alice: Caller,
    store: PostgresStore,
    pg_database: Database,
) -> None:
    model.enqueue(
        streamed_reply(
            ["I'll add ", "it."],
            call=function_call("add_task", {"title": "buy milk"}, call_id="call_add"),
        )
    )
    model.enqueue([assistant_message("Added 'buy milk'.", item_id="after_tool")])

    first = await stream(client, alice, create("Add a task to buy milk"))

    events = first.events
    assert_documented_order(events, new_thread=True)
    (workflow,) = tool_workflows(events)
    assert task_lines(workflow) == [("add_task", "complete", ANY)]
    assert "title: buy milk\n→ " in (task_lines(workflow)[0][2] or "")
    added = next(
        at
        for at, event in enumerate(events)
        if isinstance(event, ThreadItemAddedEvent) and event.item.type == "workflow"
    )
    first_done = [event.type for event in events].index("thread.item.done", 2)
    assert first_done < added  # the first answer, before the tool ran
    assert "progress_update" not in [event.type for event in events]
    assert "hidden_context_item" not in str(first.datas)  # tool records never reach the client
    tasks = await TaskRepository(pg_database).list(alice.user_id)
    assert [task.title for task in tasks] == ["buy milk"]

    thread_id = created_thread(events)
    items = await stored_items(store, alice, thread_id)
    assert [item.type for item in items] == [
        "user_message",
        "assistant_message",
        "workflow",  # what the user sees of the call (added when it started)
        "hidden_context_item",  # what the model replays (stored when it finished)
        "widget",  # the task card of the tool's result
        "assistant_message",
    ]
    (record,) = tool_records(items)
    assert (record.call_id, record.name, record.arguments) == (
        "call_add",
        "add_task",
        {"title": "buy milk"},
    )
    assert "buy milk" in str(record.output)
    listed = (
        await post(client, alice, {"type": "items.list", "params": {"thread_id": thread_id}})
    ).json()
    listed_types = [item["type"] for item in listed["data"]]
    assert "hidden_context_item" not in listed_types
    assert listed_types.count("workflow") == 1  # still there after a reload

    model.enqueue([assistant_message("You have one task.", item_id="next_turn")])
    await stream(client, alice, add_message(thread_id, "What did you just do?"))

    sent = model.last_call.input  # type: ignore[union-attr]
    call = next(item for item in sent if item.get("type") == "function_call")
    output = next(item for item in sent if item.get("type") == "function_call_output")
    assert (call["call_id"], call["name"]) == ("call_add", "add_task")
    assert output["call_id"] == "call_add"
    assert "buy milk" in str(output["output"])
    assert [item.get("type", "message") for item in sent][-1] == "message"  # the new question
    assert "following task was performed" not in str(sent)  # the workflow is not replayed


# --- failures ----------------------------------------------------------------------------------


async def test_disconnect_mid_stream_stores_the_partial_answer(
    client: httpx.AsyncClient,
    model: ScriptedModel,
    alice: Caller,
    store: PostgresStore,
    gate: Gate,
) -> None:
    model.enqueue(streamed_reply(["Partial ", "never sent"], gate=gate))
    thread_id = ""

    async with (
        client.stream(
            "POST", "/chatkit", json=create("Tell me a long story"), headers=headers_for(alice)
        ) as response,
        aclosing(sse_messages(response)) as messages,
    ):
        async for message in messages:
            event = EVENTS.validate_json(message["data"])
            if isinstance(event, ThreadCreatedEvent):
                thread_id = event.thread.id
            if deltas([event]):
                break  # hang up after the first delta, while the model is still producing

    async def partial_stored() -> list[Any]:
        items = await stored_items(store, alice, thread_id)
        return items if len(items) == 3 else []

    items = await eventually(partial_stored)
    assert texts(items) == [
        ("user_message", "Tell me a long story"),
        ("assistant_message", "Partial "),
    ]
    assert items[2].type == "sdk_hidden_context"  # the SDK's "the user cancelled" note

    model.enqueue([assistant_message("Where were we?", item_id="resumed")])
    resumed = await stream(client, alice, add_message(thread_id, "Go on"))
    assert resumed.status_code == 200
    assert deltas(resumed.events) == ["Where were we?"]
    sent = str(model.last_call.input)  # type: ignore[union-attr]
    assert "Partial " in sent
    assert "cancelled" in sent


async def test_model_exception_stores_the_partial_answer_and_reports_it(
    client: httpx.AsyncClient,
    model: ScriptedModel,
    alice: Caller,
    store: PostgresStore,
    gate: Gate,
) -> None:
    # The model fails after the client has seen its first delta (the SDK drops deltas that are
    # still queued when a model fails, so an instant failure would leave nothing partial).
    model.enqueue(streamed_reply(["Half an ", "answer"], gate=gate, error=RuntimeError("boom")))

    failed = await stream(client, alice, create("Explain something"), open_on_first_delta=gate)

    events = failed.events
    assert_documented_order(events, new_thread=True)
    assert isinstance(events[-1], ErrorEvent)
    assert (events[-1].message, events[-1].allow_retry) == (FAILURE_MESSAGE, True)
    assert "boom" not in str(failed.datas)  # internal errors are not shown
    done = [event.item for event in events if isinstance(event, ThreadItemDoneEvent)]
    assert isinstance(done[-1], AssistantMessageItem)
    partial = done[-1].content[0].text
    assert partial.startswith("Half an ")
    assert partial == "".join(deltas(events))  # exactly what the client was shown
    thread_id = created_thread(events)
    assert texts(await stored_items(store, alice, thread_id)) == [
        ("user_message", "Explain something"),
        ("assistant_message", partial),
    ]

    model.enqueue([assistant_message("Let me try again.", item_id="again")])
    again = await stream(client, alice, add_message(thread_id, "Please retry"))
    assert deltas(again.events) == ["Let me try again."]


async def test_tool_exception_stores_answer_and_failed_call_and_thread_goes_on(
    start_server: Callable[..., ChatServerThread], alice: Caller, store: PostgresStore
) -> None:
    @function_tool(failure_error_function=None)
    async def lookup(query: str) -> str:
        """Look something up."""
        raise RuntimeError("lookup backend down")

    scripted = ScriptedModel()
    server = start_server(lambda settings, database: ToolAgents(scripted, [lookup]))
    scripted.enqueue(
        streamed_reply(
            ["Let me ", "look that up."],
            call=function_call("lookup", {"query": "weather"}, call_id="call_lookup"),
        )
    )

    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        failed = await stream(http, alice, create("What's the weather?"))
        events = failed.events
        assert_documented_order(events, new_thread=True)
        (workflow,) = tool_workflows(events)
        ((title, status, content),) = task_lines(workflow)
        assert (title, status) == ("lookup", "complete")
        assert f"failed: {TOOL_FAILED}" in (content or "")
        assert isinstance(events[-1], ErrorEvent)
        thread_id = created_thread(events)
        items = await stored_items(store, alice, thread_id)
        assert texts(items) == [
            ("user_message", "What's the weather?"),
            ("assistant_message", "Let me look that up."),
        ]
        (record,) = tool_records(items)
        assert (record.name, record.error) == ("lookup", TOOL_FAILED)

        scripted.enqueue([assistant_message("The lookup failed, sorry.", item_id="sorry")])
        again = await stream(http, alice, add_message(thread_id, "And now?"))
    assert deltas(again.events) == ["The lookup failed, sorry."]
    sent = scripted.last_call.input  # type: ignore[union-attr]
    output = next(item for item in sent if item.get("type") == "function_call_output")
    assert output == {
        "type": "function_call_output",
        "call_id": "call_lookup",
        "output": f"Error: {TOOL_FAILED}",
    }


async def test_turn_timeout_stops_the_model_and_keeps_the_partial_answer(
    start_server: Callable[..., ChatServerThread],
    alice: Caller,
    store: PostgresStore,
    gate: Gate,
) -> None:
    scripted = ScriptedModel([streamed_reply(["Slow ", "answer"], gate=gate)])
    server = start_server(factory_with(scripted), agent_turn_timeout_seconds=0.5)

    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        result = await stream(http, alice, create("Take your time"))

    assert isinstance(result.events[-1], ErrorEvent)
    assert result.events[-1].message == TIMEOUT_MESSAGE
    assert texts(await stored_items(store, alice, created_thread(result.events))) == [
        ("user_message", "Take your time"),
        ("assistant_message", "Slow "),
    ]


async def test_max_turns_ends_the_turn_with_an_error(
    start_server: Callable[..., ChatServerThread], alice: Caller, store: PostgresStore
) -> None:
    scripted = ScriptedModel([[function_call("list_tasks", {}, call_id="call_list")]])
    server = start_server(factory_with(scripted), agent_max_turns=1)

    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        result = await stream(http, alice, create("List my tasks forever"))

    assert isinstance(result.events[-1], ErrorEvent)
    assert result.events[-1].message == MAX_TURNS_MESSAGE
    items = await stored_items(store, alice, created_thread(result.events))
    assert [record.name for record in tool_records(items)] == ["list_tasks"]
