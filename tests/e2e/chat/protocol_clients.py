"""One user turn over each of the three protocols, as a test sees it: thread id, answer, error.

The multi-turn, chaos and concurrency suites drive every protocol the same way through
:data:`PROTOCOLS`: ChatKit (``threads.create`` / ``threads.add_user_message``), the simple JSON
events on ``/chatkit`` and the plain text stream on ``/api/chat/stream``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

import httpx
from chatkit.types import (
    AssistantMessageContentPartTextDelta,
    AssistantMessageItem,
    ErrorEvent,
    ThreadCreatedEvent,
    ThreadItemDoneEvent,
    ThreadItemUpdatedEvent,
    ThreadStreamEvent,
)
from chatkit_backend.caller import Caller

from tests.e2e.chat.chat_support import headers_for, parse_events, sse_messages, user_input

Protocol = Literal["chatkit", "simple", "text"]
PROTOCOLS: tuple[Protocol, ...] = ("chatkit", "simple", "text")


@dataclass
class Turn:
    status: int
    thread_id: str | None
    answer: str
    errors: list[str]
    datas: list[str]


def request_for(
    protocol: Protocol, message: str, thread_id: str | None
) -> tuple[str, dict[str, Any]]:
    """``(path, httpx keyword arguments)`` of one user message in ``protocol``."""
    if protocol == "chatkit":
        if thread_id is None:
            body: dict[str, object] = {
                "type": "threads.create",
                "params": {"input": user_input(message)},
            }
        else:
            body = {
                "type": "threads.add_user_message",
                "params": {"thread_id": thread_id, "input": user_input(message)},
            }
        return "/chatkit", {"json": body}
    if protocol == "simple":
        simple: dict[str, object] = {"message": message}
        if thread_id is not None:
            simple["thread_id"] = thread_id
        return "/chatkit", {"json": simple}
    params = {"message": message}
    if thread_id is not None:
        params["conversation_id"] = thread_id
    return "/api/chat/stream", {"params": params}


async def send(
    client: httpx.AsyncClient,
    user: Caller,
    protocol: Protocol,
    message: str,
    thread_id: str | None = None,
) -> Turn:
    """Send one message and read the whole answer."""
    path, options = request_for(protocol, message, thread_id)
    async with client.stream("POST", path, headers=headers_for(user), **options) as response:
        if not response.headers.get("content-type", "").startswith("text/event-stream"):
            await response.aread()
            return Turn(response.status_code, thread_id, "", [response.text], [])
        messages = [message async for message in sse_messages(response)]
        thread = response.headers.get("x-thread-id", thread_id)
    datas = [message["data"] for message in messages]
    if protocol == "chatkit":
        events = parse_events(datas)
        created = [event.thread.id for event in events if isinstance(event, ThreadCreatedEvent)]
        errors = [event.message or event.code for event in events if isinstance(event, ErrorEvent)]
        answer = chatkit_answer(events)
        return Turn(200, created[0] if created else thread, answer, errors, datas)
    assert datas[-1] == "[DONE]", datas
    if protocol == "simple":
        events_json = [json.loads(data) for data in datas[:-1]]
        answer = "".join(event["content"] for event in events_json if event["type"] == "text")
        errors = [event["message"] for event in events_json if event["type"] == "error"]
        return Turn(200, events_json[0]["thread_id"], answer, errors, datas)
    answer = "".join(m["data"] for m in messages[:-1] if "event" not in m)
    errors = [m["data"] for m in messages if m.get("event") == "error"]
    return Turn(200, thread, answer, errors, datas)


def chatkit_answer(events: list[ThreadStreamEvent]) -> str:
    """The assistant text a ChatKit client shows: each message's deltas, or its ``done`` text
    (which replaces them), messages joined in the order they appeared."""
    texts: dict[str, str] = {}
    for event in events:
        if isinstance(event, ThreadItemUpdatedEvent) and isinstance(
            event.update, AssistantMessageContentPartTextDelta
        ):
            texts[event.item_id] = texts.get(event.item_id, "") + event.update.delta
        elif isinstance(event, ThreadItemDoneEvent) and isinstance(
            event.item, AssistantMessageItem
        ):
            texts[event.item.id] = "".join(part.text for part in event.item.content)
    return "".join(texts.values())
