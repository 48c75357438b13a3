"""Server-Sent Events: framing, and the one task and queue between an answer and the socket.

:class:`EventStream` produces the body in a task of its own that only awaits the source (the
SDK's event stream, with the agent turn inside it), never the socket; the response writes what
has queued as one ``send`` (coalesced writes keep up with a fast model). The response starts only
once the source passes :data:`READY` (the SDK's ``stream_options``; a new message's turn also
waits for its insert, :mod:`chat_app.service`): errors before it become JSON 4xx answers, and a
hang-up cannot cut those writes. A hang-up is a :class:`~chat_app.cancellation.HangUp` signal,
not a task cancellation (see there).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Callable, Mapping

from chatkit_backend.observability import get_logger
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from .cancellation import CURRENT_HANG_UP, HangUp, shielded

SSE_HEADERS: dict[str, str] = {
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}
"""No caching, and no buffering by nginx-style proxies (which would defeat streaming)."""

DONE = b"data: [DONE]\n\n"
"""End marker of the simple protocols."""

_LINE_BREAK = re.compile(r"\r\n|\r|\n")

COALESCE_SECONDS = 0.001
"""Longest a chunk of a burst waits for the next ones to share its write (see
:meth:`EventStream.chunks`): one write per event costs more than the event itself."""
BURST_WRITES = 8
"""Quick writes in a row after which the stream counts as a burst."""


class Ready:
    """Marks, in a stream's source, the end of what must happen before the response starts."""


READY = Ready()

Chunks = AsyncIterator[bytes | Ready]


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
    before :data:`READY` is raised there. Errors after it are logged and turned into a final
    chunk by ``on_error`` (the protocol's error event).
    """

    def __init__(self, source: Chunks, on_error: Callable[[Exception], bytes]) -> None:
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._on_error = on_error
        self.hang_up = HangUp()
        self._sending = False
        self._abandoned = False
        self._task = asyncio.create_task(self._produce(source))

    async def started(self) -> None:
        """Wait for :data:`READY`; raise what the source raised before it.

        If the handler itself is cancelled meanwhile, the head still completes (shielded: a
        stored user message is never half-written), then the stream stops as for a hang-up.
        """
        try:
            await asyncio.shield(self._ready)
        except asyncio.CancelledError:
            await self.close()
            raise

    async def chunks(self) -> AsyncIterator[bytes]:
        """The produced bytes, every chunk that is ready joined into one write.

        Once :data:`BURST_WRITES` writes in a row have each followed the last within
        :data:`COALESCE_SECONDS` (a burst), a write waits that long for more chunks to join it;
        the first events of an answer and a paced answer's are written at once.
        """
        self._sending = True
        loop = asyncio.get_running_loop()
        last_write = -COALESCE_SECONDS
        quick_writes = 0
        while True:
            chunk = await self._queue.get()
            if chunk is None:
                return
            quick_writes = quick_writes + 1 if loop.time() - last_write < COALESCE_SECONDS else 0
            if quick_writes >= BURST_WRITES and self._queue.empty():
                await asyncio.sleep(COALESCE_SECONDS)
            batch = [chunk]
            ended = False
            while not self._queue.empty():
                more = self._queue.get_nowait()
                if more is None:
                    ended = True
                    break
                batch.append(more)
            yield b"".join(batch)
            last_write = loop.time()
            if ended:
                return

    async def close(self) -> None:
        """Stop the producer if it still runs (as a hang-up) and wait until it has finished.
        Closed before its response was sent, the stream is abandoned: the handler answers."""
        self._abandoned = not self._sending
        if not self._task.done():
            self.hang_up.signal()
        await shielded(asyncio.wait({self._task}))

    def response(self, headers: Mapping[str, str] | None = None) -> EventStreamResponse:
        return EventStreamResponse(self, headers)

    async def _produce(self, source: Chunks) -> None:
        CURRENT_HANG_UP.set(self.hang_up)  # this task's context only
        try:
            async for chunk in source:
                if isinstance(chunk, Ready):
                    self._set_ready()
                else:
                    self._queue.put_nowait(chunk)
        except asyncio.CancelledError:
            if not self._ready.done():
                self._ready.set_exception(asyncio.CancelledError())
            raise
        except Exception as exc:
            if not self._ready.done():
                self._ready.set_exception(exc)
                return
            if self._abandoned:
                get_logger().info("event stream stopped unsent: %s", type(exc).__name__)
                return
            get_logger().exception("event stream failed after it started")
            self._queue.put_nowait(self._on_error(exc))
        finally:
            self._queue.put_nowait(None)
            self._set_ready()

    def _set_ready(self) -> None:
        if not self._ready.done():
            self._ready.set_result(None)


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
            await shielded(asyncio.wait({watcher}))

    async def _watch_disconnect(self, receive: Receive) -> None:
        with contextlib.suppress(OSError):
            while (await receive())["type"] != "http.disconnect":
                pass
        self._stream.hang_up.signal()
