"""The simple SSE protocols over real HTTP, as views of the same threads as the ChatKit protocol."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from agents.testing import ScriptedModel, assistant_message, function_call
from chat_app.simple_protocol import (
    ErrorEvent as SimpleErrorEvent,
)
from chat_app.simple_protocol import (
    SimpleEvent,
    TextEvent,
    ThinkingEvent,
    ToolCallEvent,
    ToolResultEvent,
)
from chat_app.streaming import FAILURE_MESSAGE
from chatkit_backend.caller import Caller
from chatkit_backend.store import PostgresStore
from pydantic import TypeAdapter

from tests.e2e.chat.chat_support import (
    Gate,
    headers_for,
    json_body,
    post,
    sse_messages,
    stream,
    streamed_reply,
)
from tests.e2e.chat.chat_support import user_input as chatkit_input

SIMPLE: TypeAdapter[SimpleEvent] = TypeAdapter(SimpleEvent)


class SimpleStream:
    """A finished simple-protocol response: status, headers, SSE messages."""

    def __init__(self, response: httpx.Response, messages: list[dict[str, str]]) -> None:
        self.status_code = response.status_code
        self.headers = response.headers
        self.messages = messages

    @property
    def events(self) -> list[SimpleEvent]:
        """Every data but the final ``[DONE]``, parsed as the simple protocol's event union."""
        assert self.messages[-1]["data"] == "[DONE]"
        return [SIMPLE.validate_json(message["data"]) for message in self.messages[:-1]]

    def text(self) -> str:
        return "".join(event.content for event in self.events if isinstance(event, TextEvent))


async def simple_chat(
    client: httpx.AsyncClient,
    user: Caller,
    *,
    body: Any = None,
    path: str = "/chatkit",
    params: dict[str, str] | None = None,
    open_on_first_text: Gate | None = None,
) -> SimpleStream:
    async with client.stream(
        "POST", path, json=body, params=params, headers=headers_for(user)
    ) as response:
        messages: list[dict[str, str]] = []
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            async for message in sse_messages(response):
                messages.append(message)
                if open_on_first_text is not None and is_text(message, path):
                    open_on_first_text.open()
        else:
            await response.aread()
            messages.append({"data": response.text})
        return SimpleStream(response, messages)


def is_text(message: dict[str, str], path: str) -> bool:
    """Whether an SSE message carries answer text (JSON ``text`` event, or a plain chunk)."""
    if path == "/chatkit":
        return '"type":"text"' in message["data"]
    return "event" not in message and message["data"] != "[DONE]"


# --- POST /chatkit with {"message"} ------------------------------------------------------------


async def test_message_body_streams_simple_events_and_names_the_thread(
    client: httpx.AsyncClient, model: ScriptedModel, alice: Caller, store: PostgresStore
) -> None:
    model.enqueue(streamed_reply(["Hello ", "from ", "the bot."]))

    result = await simple_chat(client, alice, body={"message": "Hi bot"})

    assert result.status_code == 200
    assert result.headers["content-type"].startswith("text/event-stream")
    assert result.headers["cache-control"] == "no-cache"
    events = result.events
    first = events[0]
    assert isinstance(first, ThinkingEvent)
    assert first.thread_id is not None
    assert result.headers["x-thread-id"] == first.thread_id
    assert [event.content for event in events if isinstance(event, TextEvent)] == [
        "Hello ",
        "from ",
        "the bot.",
    ]
    thread = await store.load_thread(first.thread_id, alice)
    assert thread.title == "Hi bot"
    listed = json_body(await post(client, alice, {"type": "threads.list", "params": {}}))
    assert [entry["id"] for entry in listed["data"]] == [first.thread_id]


async def test_simple_protocol_continues_a_chatkit_thread_and_vice_versa(
    client: httpx.AsyncClient, model: ScriptedModel, alice: Caller, store: PostgresStore
) -> None:
    model.enqueue([assistant_message("Noted, Ada.", item_id="a1")])
    created = await stream(
        client,
        alice,
        {"type": "threads.create", "params": {"input": chatkit_input("I am Ada")}},
    )
    thread_id = created.thread_id
    model.enqueue([assistant_message("You are Ada.", item_id="a2")])

    simple = await simple_chat(client, alice, body={"message": "Who am I?", "thread_id": thread_id})
    model.enqueue([assistant_message("Still Ada.", item_id="a3")])
    text = await simple_chat(
        client,
        alice,
        path="/api/chat/stream",
        params={"message": "And now?", "conversation_id": thread_id},
    )
    model.enqueue([assistant_message("Yes, Ada.", item_id="a4")])
    back = await stream(
        client,
        alice,
        {
            "type": "threads.add_user_message",
            "params": {"thread_id": thread_id, "input": chatkit_input("Sure?")},
        },
    )

    assert simple.events[0] == ThinkingEvent(thread_id=thread_id)
    assert simple.text() == "You are Ada."
    assert text.headers["x-thread-id"] == thread_id
    assert back.status_code == 200
    sent = model.last_call.input  # type: ignore[union-attr]
    assert [item.get("role") for item in sent] == ["user", "assistant"] * 3 + ["user"]
    items = (await store.load_thread_items(thread_id, None, 20, "asc", alice)).data
    assert [item.type for item in items] == ["user_message", "assistant_message"] * 4


async def test_simple_protocol_reports_tool_calls_and_results(
    client: httpx.AsyncClient, model: ScriptedModel, alice: Caller
) -> None:
    model.enqueue(
        streamed_reply(
            ["Adding."], call=function_call("add_task", {"title": "walk"}, call_id="call_walk")
        )
    )
    model.enqueue([assistant_message("Done: walk.", item_id="walked")])

    result = await simple_chat(client, alice, body={"message": "add a task: walk"})

    kinds = [event.type for event in result.events]
    assert kinds == ["thinking", "text", "tool_call", "tool_result", "widget", "text", "text"]
    call = result.events[2]
    outcome = result.events[3]
    assert isinstance(call, ToolCallEvent)
    assert (call.call_id, call.name, call.arguments) == ("call_walk", "add_task", {"title": "walk"})
    assert isinstance(outcome, ToolResultEvent)
    assert outcome.error is None
    assert "walk" in str(outcome.output)
    assert result.text() == "Adding.\n\nDone: walk."


async def test_simple_protocol_reports_a_failed_turn_then_done(
    client: httpx.AsyncClient, model: ScriptedModel, alice: Caller, gate: Gate
) -> None:
    model.enqueue(streamed_reply(["Par", "tial"], gate=gate, error=RuntimeError("down")))

    result = await simple_chat(client, alice, body={"message": "go"}, open_on_first_text=gate)

    assert result.events[-1] == SimpleErrorEvent(message=FAILURE_MESSAGE)
    assert result.text().startswith("Par")


# --- POST /api/chat/stream ---------------------------------------------------------------------


async def test_text_stream_frames_multiline_chunks_and_ends_with_done(
    client: httpx.AsyncClient, model: ScriptedModel, alice: Caller, store: PostgresStore
) -> None:
    chunks = ["Line one\nLine two", "\n\n", "- item\r\n- other", " end"]
    model.enqueue(streamed_reply(chunks))

    result = await simple_chat(
        client, alice, path="/api/chat/stream", params={"message": "Give me a list"}
    )

    assert result.status_code == 200
    assert result.headers["content-type"].startswith("text/event-stream")
    datas = [message["data"] for message in result.messages]
    assert datas[-1] == "[DONE]"
    assert datas[:-1] == ["Line one\nLine two", "\n\n", "- item\n- other", " end"]
    thread_id = result.headers["x-thread-id"]
    stored = (await store.load_thread_items(thread_id, None, 5, "asc", alice)).data
    assert stored[-1].content[0].text == "".join(chunks)  # type: ignore[union-attr]


async def test_text_stream_reports_failures_as_error_events(
    client: httpx.AsyncClient, model: ScriptedModel, alice: Caller, gate: Gate
) -> None:
    model.enqueue(streamed_reply(["Some", " text"], gate=gate, error=RuntimeError("down")))

    result = await simple_chat(
        client,
        alice,
        path="/api/chat/stream",
        params={"message": "go"},
        open_on_first_text=gate,
    )

    assert result.messages[-2] == {"event": "error", "data": FAILURE_MESSAGE}
    assert result.messages[-1] == {"data": "[DONE]"}


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_kwargs", "status"),
    [
        ({"body": {"message": "   "}}, 400),
        ({"body": {"message": 42}}, 400),
        ({"body": {"message": "hi", "thread_id": "thr_unknown"}}, 404),
        ({"path": "/api/chat/stream", "params": {"message": ""}}, 400),
        ({"path": "/api/chat/stream", "params": {}}, 400),
        ({"path": "/api/chat/stream", "params": {"message": "hi", "conversation_id": "x"}}, 404),
    ],
)
async def test_simple_protocol_errors_are_json(
    client: httpx.AsyncClient, alice: Caller, request_kwargs: dict[str, Any], status: int
) -> None:
    result = await simple_chat(client, alice, **request_kwargs)

    assert result.status_code == status
    assert result.headers["content-type"] == "application/json"
    assert "detail" in json.loads(result.messages[0]["data"])
