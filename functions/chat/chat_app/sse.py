"""Server-Sent Events: framing, and a response whose producer a disconnect reliably stops.

Why not Starlette's ``StreamingResponse``: under uvicorn (ASGI spec 2.3) it iterates the body in
an anyio task group and cancels that scope on ``http.disconnect``. The cancellation lands wherever
the iteration happens to be and is re-delivered on every later ``await``; when the body generator
is suspended at a ``yield`` (the usual case while a chunk is being sent) the ChatKit SDK's
``except CancelledError`` handler, which saves the partial answer, never runs at all.

Here the body is produced by a task of its own (:class:`EventStream`) that only ever awaits the
source, never the socket: chunks go into an unbounded queue (an answer's size bounds it) and the
response sends whatever has accumulated as one write. A disconnect cancels that task, so the
cancellation is delivered exactly once, inside the source, where the SDK expects it; the
producer is then awaited (shielded) so the partial answer is stored before the request ends.
Coalescing queued chunks into one ``send`` is also what keeps the events per second high when the
model is faster than the socket, without delaying any chunk that is ready.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Callable, Mapping

from chatkit_backend.observability import get_logger
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from .cancellation import shielded

SSE_HEADERS: dict[str, str] = {
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}
"""No caching, and no buffering by nginx-style proxies (which would defeat streaming)."""

DONE = b"data: [DONE]\n\n"
"""End marker of the simple protocols."""

_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def sse_json(payload: str | bytes) -> bytes:
    """One event whose data is a JSON document (compact JSON holds no raw line breaks)."""
    data = payload.encode() if isinstance(payload, str) else payload
    return b"data: " + data + b"\n\n"


def sse_text(text: str, event: str | None = None) -> bytes:
    """One event carrying ``text`` verbatim: a ``data:`` line per line of it.

    SSE ends a field at any of CR, LF or CRLF and joins multi-line data with LF, so splitting on
    all three is what makes a chunk with line breaks arrive whole (line breaks normalised to LF).
    """
    lines = [f"event: {event}"] if event else []
    lines.extend(f"data: {line}" for line in _LINE_BREAK.split(text))
    return ("\n".join(lines) + "\n\n").encode()


class EventStream:
    """An SSE body produced by its own task; see the module docstring for why.

    Create it inside the request handler, then ``await started()``: anything the source raises
    before its first chunk is raised there, so the handler can still answer with a JSON error
    instead of a dead ``200`` stream. Errors after the first chunk are logged and turned into a
    final chunk by ``on_error`` (the protocol's error event).
    """

    def __init__(
        self, source: AsyncIterator[bytes], on_error: Callable[[Exception], bytes]
    ) -> None:
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._first: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._on_error = on_error
        self._task = asyncio.create_task(self._produce(source))

    async def started(self) -> None:
        """Wait for the first chunk; raise what the source raised before producing one."""
        try:
            await asyncio.shield(self._first)
        except asyncio.CancelledError:
            await self.close()
            raise

    async def chunks(self) -> AsyncIterator[bytes]:
        """The produced bytes, every chunk that is ready joined into one write."""
        while True:
            chunk = await self._queue.get()
            if chunk is None:
                return
            batch = [chunk]
            ended = False
            while not self._queue.empty():
                more = self._queue.get_nowait()
                if more is None:
                    ended = True
                    break
                batch.append(more)
            yield b"".join(batch)
            if ended:
                return

    def cancel(self) -> None:
        """Stop the producer (the client is gone); :meth:`close` waits for its cleanup."""
        self._task.cancel()

    async def close(self) -> None:
        """Stop the producer if it still runs and wait, shielded, until its cleanup is done."""
        self._task.cancel()
        await shielded(asyncio.wait({self._task}))

    def response(self, headers: Mapping[str, str] | None = None) -> EventStreamResponse:
        return EventStreamResponse(self, headers)

    async def _produce(self, source: AsyncIterator[bytes]) -> None:
        try:
            async for chunk in source:
                self._queue.put_nowait(chunk)
                if not self._first.done():
                    self._first.set_result(None)
        except Exception as exc:
            if not self._first.done():
                self._first.set_exception(exc)
                return
            get_logger().exception("event stream failed after it started")
            self._queue.put_nowait(self._on_error(exc))
        finally:
            self._queue.put_nowait(None)
            if not self._first.done():
                self._first.set_result(None)


class EventStreamResponse(StreamingResponse):
    """``text/event-stream`` response over an :class:`EventStream`, watching for disconnects."""

    def __init__(self, stream: EventStream, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(
            stream.chunks(),
            media_type="text/event-stream",
            headers={**SSE_HEADERS, **(headers or {})},
        )
        self._stream = stream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        watcher = asyncio.create_task(self._watch_disconnect(receive))
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": self.status_code,
                    "headers": self.raw_headers,
                }
            )
            async for body in self.body_iterator:
                await send({"type": "http.response.body", "body": body, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            get_logger().info("client went away while streaming")
        finally:
            watcher.cancel()
            await self._stream.close()

    async def _watch_disconnect(self, receive: Receive) -> None:
        with contextlib.suppress(OSError):
            while (await receive())["type"] != "http.disconnect":
                pass
        self._stream.cancel()
