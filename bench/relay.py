"""The bare relay: the baseline of the turn-overhead benchmark, on the same uvicorn.

    python -m bench.relay PORT MODEL_URL

It takes the body the chat function takes (a ChatKit ``threads.add_user_message``), calls the
same model with ``AsyncOpenAI`` streaming (one client per process) and relays each delta as a
ChatKit-shaped SSE event: no auth, no database, no agent. ``/bench/usage`` reports the process's
CPU time and peak RSS (:func:`with_usage` adds it to the chat server too).
"""

from __future__ import annotations

import json
import resource
import sys
from collections.abc import AsyncIterator
from typing import Any

from openai import AsyncOpenAI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route


def usage() -> dict[str, float]:
    """This process's CPU seconds (user + system) and peak RSS in MiB."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    return {"cpu_s": own.ru_utime + own.ru_stime, "peak_rss_mib": own.ru_maxrss / 1024}


def with_usage(app: Any) -> Any:
    """``app`` plus the ``GET /bench/usage`` route."""

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/bench/usage":
            await JSONResponse(usage())(scope, receive, send)
            return
        await app(scope, receive, send)

    return wrapped


def build(model_url: str) -> Starlette:
    client = AsyncOpenAI(api_key="not-needed", base_url=model_url)

    async def relay(request: Request) -> StreamingResponse:
        body = json.loads(await request.body())
        text = "".join(part["text"] for part in body["params"]["input"]["content"])

        async def events() -> AsyncIterator[bytes]:
            stream = await client.chat.completions.create(
                model="bench", messages=[{"role": "user", "content": text}], stream=True
            )
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    update = {
                        "type": "assistant_message.content_part.text_delta",
                        "content_index": 0,
                        "delta": chunk.choices[0].delta.content,
                    }
                    event = {"type": "thread.item.updated", "item_id": "m", "update": update}
                    yield b"data: " + json.dumps(event).encode() + b"\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    async def health(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(routes=[Route("/chatkit", relay, methods=["POST"]), Route("/health", health)])


def main() -> None:
    import uvicorn

    port, model_url = int(sys.argv[1]), sys.argv[2]
    uvicorn.run(
        with_usage(build(model_url)),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
