"""The turn-overhead benchmark's model: a Chat Completions server that stamps its first delta.

    python -m bench.fake_model PORT

What it answers depends on the last user message: ``burst N`` writes N deltas in one socket
write (a model whose whole answer arrives at once), ``paced N`` writes them one by one with a
short sleep in between, ``list my tasks`` calls the todo tool ``list_tasks`` first (the answer
then carries a task-list widget), anything else gets a short answer; a request without
``stream`` (a new thread's title) gets a one-line completion as JSON. The first delta is
``<arrival> <written> `` (``time.perf_counter()``, a system-wide monotonic clock on Linux) so the
client can tell when the request arrived and when the first chunk left, without sharing a
process with the model.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

PACE_SECONDS = 0.001
"""Between two deltas of a paced answer."""
SHORT_DELTAS = 5
WIDGET_REQUEST = "list my tasks"


def _chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    body = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "bench",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(body).encode() + b"\n\n"


def _text(arrival: float, count: int) -> list[bytes]:
    """The frames of a ``count``-delta answer, the first stamped when it is built."""
    first = f"{arrival:.9f} {time.perf_counter():.9f} "
    frames = [_chunk({"role": "assistant", "content": ""}), _chunk({"content": first})]
    frames += [_chunk({"content": f"w{index} "}) for index in range(1, count)]
    return [*frames, _chunk({}, "stop"), b"data: [DONE]\n\n"]


def _tool_call() -> list[bytes]:
    call = {"index": 0, "id": f"call_{time.monotonic_ns()}", "type": "function"}
    function = {"name": "list_tasks", "arguments": "{}"}
    return [
        _chunk(
            {"role": "assistant", "content": None, "tool_calls": [{**call, "function": function}]}
        ),
        _chunk({}, "tool_calls"),
        b"data: [DONE]\n\n",
    ]


def last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "tool":
            return ""  # after a tool result: a short answer
        if message.get("role") == "user":
            return content_text(message.get("content"))
    return ""


def content_text(content: Any) -> str:
    """A message's text: its content when a string, else its parts' text joined."""
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content or [])


async def answer(body: dict[str, Any], arrival: float) -> AsyncIterator[bytes]:
    said = last_user_text(body.get("messages", []))
    kind, _, size = said.partition(" ")
    if said == WIDGET_REQUEST:
        yield b"".join(_tool_call())
    elif kind == "burst" and size.isdigit():
        yield b"".join(_text(arrival, int(size)))
    elif kind == "paced" and size.isdigit():
        for frame in _text(arrival, int(size)):
            yield frame
            await asyncio.sleep(PACE_SECONDS)
    else:
        yield b"".join(_text(arrival, SHORT_DELTAS))


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A bare ASGI app (no framework cost on the model's side of the measurement)."""
    if scope["type"] != "http":
        return
    arrival = time.perf_counter()
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    body = json.loads(b"".join(chunks) or b"{}")
    if not body.get("stream"):
        await _send_json(send, _completion("Bench title"))
        return
    headers = [(b"content-type", b"text/event-stream")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    if scope["path"].endswith("/chat/completions"):
        async for frame in answer(body, arrival):
            await send({"type": "http.response.body", "body": frame, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


def _completion(text: str) -> dict[str, Any]:
    message = {"role": "assistant", "content": text}
    return {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 0,
        "model": "bench",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
    }


async def _send_json(send: Any, document: dict[str, Any]) -> None:
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": json.dumps(document).encode()})


def main() -> None:
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")


if __name__ == "__main__":
    main()
