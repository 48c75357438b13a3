"""A fake OpenAI-compatible server on 127.0.0.1: the Responses API and Chat Completions, streamed.

Tests point the project's real model path at it (``OPENAI_BASE_URL`` = :attr:`FakeOpenAI.base_url`,
``OPENAI_API`` chooses the API), so the ``openai`` client inside the Agents SDK models, its SSE
parsing and the SDK's converters all run for real; a scripted in-process model would hide them.

Each test scripts the replies (:meth:`FakeOpenAI.script`, a FIFO shared by both APIs; when it is
empty :func:`echo` answers) and reads what the model was sent (:attr:`FakeOpenAI.requests`,
normalised by :meth:`Recorded.transcript` so one assertion fits both APIs). The Responses events
are the chat function's own :class:`~chat_app.response_stream.ResponseStream`, sent as JSON.

Beside the streamed answers: non-streamed requests (generated titles) have their own script and
record (:meth:`FakeOpenAI.script_unstreamed`, :attr:`FakeOpenAI.unstreamed`), and dictation's
``/v1/audio/transcriptions`` (multipart) records each upload (:attr:`FakeOpenAI.transcriptions`).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, Self, TypeVar

from chat_app.response_stream import ResponseStream, event_json, token_usage
from chatkit_backend.ids import new_id
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp

from tests.support.servers import UvicornThread

T = TypeVar("T")

Api = Literal["responses", "chat_completions"]
APIS: tuple[Api, ...] = ("responses", "chat_completions")


# --- what a reply can be ------------------------------------------------------------------------


@dataclass(frozen=True)
class ToolCall:
    """A function call the model makes; ``arguments`` are streamed in ``chunks`` pieces."""

    name: str
    arguments: dict[str, Any]
    call_id: str = ""
    chunks: int = 3


@dataclass(frozen=True)
class Reply:
    """One scripted model response.

    ``deltas``: the message text, one streamed delta each (none: no message). ``calls``: tool
    calls after the message. ``status`` (not 200): an error answer instead of a stream, with
    ``retry_after`` as the Retry-After header. ``hang``: seconds to stall before answering.
    ``cut_after``: end the stream abruptly (connection dropped) after that many deltas, before
    the response completes. ``invalid_after``: after that many deltas, send a chunk that is not
    JSON. ``usage``: (input, output) tokens reported at the end. ``pace``: seconds between events.
    ``reasoning``: reasoning summary parts (each its deltas) before the output, Responses API
    only (Chat Completions has no reasoning summaries).
    """

    deltas: tuple[str, ...] = ()
    calls: tuple[ToolCall, ...] = ()
    status: int = 200
    retry_after: str | None = None
    hang: float = 0.0
    cut_after: int | None = None
    invalid_after: int | None = None
    usage: tuple[int, int] = (11, 7)
    pace: float = 0.0
    reasoning: tuple[tuple[str, ...], ...] = ()


def text(*deltas: str, **options: Any) -> Reply:
    return Reply(deltas=deltas, **options)


def call(name: str, arguments: dict[str, Any], *, before: tuple[str, ...] = ()) -> Reply:
    """A reply that calls one tool (optionally after some text)."""
    return Reply(deltas=before, calls=(ToolCall(name, arguments),))


def error(status: int, retry_after: str | None = None) -> Reply:
    return Reply(status=status, retry_after=retry_after)


Responder = Callable[["Recorded"], Reply]


def titled(request: Recorded) -> Reply:
    """The default non-streamed answer: ``About <the first three words>``."""
    return text("About " + " ".join(request.last_user_text().split()[:3]))


def heard(upload: Transcribed) -> Reply:
    """The default transcription: ``heard <n> bytes``."""
    return text(f"heard {len(upload.audio)} bytes")


def echo(request: Recorded) -> Reply:
    """The default answer: ``Re: <last user text>``, in a few deltas."""
    said = request.last_user_text()
    return text("Re: ", *[said[i : i + 8] for i in range(0, len(said), 8)])


# --- what the model was sent --------------------------------------------------------------------


@dataclass
class Recorded:
    """One request the fake received."""

    api: Api
    body: dict[str, Any]

    def transcript(self) -> list[tuple[str, str]]:
        """The conversation as ``(role, text)`` pairs, the same shape for both APIs.

        Roles: ``system``, ``user``, ``assistant``, ``call`` (text: ``name arguments``) and
        ``result`` (text: the output). Instructions are left out.
        """
        if self.api == "responses":
            return list(_responses_transcript(self.body.get("input", [])))
        return list(_chat_transcript(self.body.get("messages", [])))

    def user_parts(self) -> list[list[tuple[str, str]]]:
        """The content parts of each user message (see :func:`_content_parts`)."""
        key = "input" if self.api == "responses" else "messages"
        messages = self.body.get(key)
        if isinstance(messages, str):
            return [[("text", messages)]]
        return [
            _content_parts(message.get("content"))
            for message in messages or []
            if message.get("role") == "user"
        ]

    def last_user_text(self) -> str:
        users = [said for role, said in self.transcript() if role == "user"]
        return users[-1] if users else ""

    @property
    def tool_names(self) -> list[str]:
        tools = self.body.get("tools") or []
        return [tool.get("name") or tool.get("function", {}).get("name") for tool in tools]


MEDIA_PARTS = ("input_image", "image_url", "input_file", "file")
"""Image and file content parts of both APIs (Responses first, then Chat Completions)."""


def _content_parts(content: Any) -> list[tuple[str, str]]:
    """``(kind, value)`` per part, one shape for both APIs: ``("text", text)``,
    ``("image", url)``, ``("file", "<filename>|<file_data>")``."""
    if isinstance(content, str):
        return [("text", content)]
    parts: list[tuple[str, str]] = []
    for part in content or []:
        kind = part.get("type")
        if kind in ("input_text", "text"):
            parts.append(("text", part["text"]))
        elif kind == "input_image":
            parts.append(("image", part["image_url"]))
        elif kind == "image_url":
            parts.append(("image", part["image_url"]["url"]))
        elif kind == "input_file":
            parts.append(("file", f"{part['filename']}|{part['file_data']}"))
        elif kind == "file":
            parts.append(("file", f"{part['file']['filename']}|{part['file']['file_data']}"))
        else:
            raise AssertionError(f"unexpected user content part {part!r}")
    return parts


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = []
    for part in content or []:
        if part.get("type") in ("input_text", "output_text", "text"):
            parts.append(part["text"])
        elif part.get("type") == "refusal":
            parts.append(part["refusal"])
        elif part.get("type") in MEDIA_PARTS:
            continue  # attachments: read with Recorded.user_parts
        else:
            raise AssertionError(f"unexpected content part {part!r}")
    return "".join(parts)


def _responses_transcript(items: Any) -> Iterator[tuple[str, str]]:
    if isinstance(items, str):
        yield ("user", items)
        return
    for item in items:
        kind = item.get("type", "message")
        if kind == "message":
            if item["role"] not in ("system", "developer"):
                yield (item["role"], _content_text(item["content"]))
        elif kind == "function_call":
            yield ("call", f"{item['name']} {item['arguments']}")
        elif kind == "function_call_output":
            output = item["output"]
            yield ("result", output if isinstance(output, str) else _content_text(output))
        else:
            raise AssertionError(f"unexpected input item {item!r}")


def _chat_transcript(messages: list[dict[str, Any]]) -> Iterator[tuple[str, str]]:
    for message in messages:
        role = message["role"]
        if role in ("system", "developer"):
            continue
        if role == "tool":
            yield ("result", _content_text(message["content"]))
            continue
        if message.get("content"):
            yield (role, _content_text(message["content"]))
        for tool_call in message.get("tool_calls") or []:
            function = tool_call["function"]
            yield ("call", f"{function['name']} {function['arguments']}")


@dataclass(frozen=True)
class Transcribed:
    """One ``/v1/audio/transcriptions`` request: the form fields, the file's name and media
    type, its bytes."""

    fields: dict[str, str]
    file: tuple[str, str]
    audio: bytes


# --- the server ---------------------------------------------------------------------------------


class CutStream(Exception):
    """Raised inside a response body: uvicorn then drops the connection mid-stream."""


class SideRoute(Generic[T]):
    """A request kind answered apart from the streamed answers: its own script and record.

    ``queue`` replies for the next requests (``default`` decides when none is queued) and read
    what arrived in ``received``; thread-safe (the fake serves from its own thread).
    """

    def __init__(self, default: Callable[[T], Reply]) -> None:
        self._lock = threading.Lock()
        self._default = default
        self._script: deque[Reply] = deque()
        self._received: list[T] = []

    def queue(self, *replies: Reply) -> None:
        with self._lock:
            self._script.extend(replies)

    @property
    def received(self) -> list[T]:
        with self._lock:
            return list(self._received)

    def answer(self, request: T) -> Reply:
        """Record ``request`` and give its reply."""
        with self._lock:
            self._received.append(request)
            return self._script.popleft() if self._script else self._default(request)

    def clear(self) -> None:
        with self._lock:
            self._script.clear()
            self._received.clear()


@dataclass
class _State:
    lock: threading.Lock = field(default_factory=threading.Lock)
    script: deque[Reply | Responder] = field(default_factory=deque)
    requests: list[Recorded] = field(default_factory=list)
    responder: Responder = echo
    unstreamed: SideRoute[Recorded] = field(default_factory=lambda: SideRoute(titled))
    transcriptions: SideRoute[Transcribed] = field(default_factory=lambda: SideRoute(heard))
    closing: threading.Event = field(default_factory=threading.Event)


class FakeOpenAI(UvicornThread):
    """The fake server (a context manager, like :class:`UvicornThread`)."""

    def __init__(self) -> None:
        self._state = _State()
        state = self._state

        @asynccontextmanager
        async def app() -> AsyncIterator[ASGIApp]:
            yield _build_app(state)

        super().__init__(app, lifespan="off", name="fake-openai")

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def script(self, *replies: Reply | Responder) -> None:
        """Queue replies for the next model calls (a callable decides from the request)."""
        with self._state.lock:
            self._state.script.extend(replies)

    def reset(self, responder: Responder = echo) -> None:
        """Forget the scripts and the recorded requests; answer with ``responder`` when idle."""
        with self._state.lock:
            self._state.script.clear()
            self._state.requests.clear()
            self._state.responder = responder
        self._state.unstreamed.clear()
        self._state.transcriptions.clear()

    @property
    def unstreamed(self) -> SideRoute[Recorded]:
        """Non-streamed requests (generated titles), kept apart from :attr:`requests`; when
        none is queued, :func:`titled` answers."""
        return self._state.unstreamed

    @property
    def transcriptions(self) -> SideRoute[Transcribed]:
        """``/v1/audio/transcriptions`` uploads; when none is queued, :func:`heard` answers."""
        return self._state.transcriptions

    @property
    def requests(self) -> list[Recorded]:
        with self._state.lock:
            return list(self._state.requests)

    @property
    def pending(self) -> int:
        """Scripted replies not used yet."""
        with self._state.lock:
            return len(self._state.script)

    def stop(self) -> None:
        self._state.closing.set()
        super().stop()

    def __enter__(self) -> Self:
        return self.start()


def _build_app(state: _State) -> Starlette:
    async def handle(request: Request, api: Api) -> Response:
        body = json.loads(await request.body())
        recorded = Recorded(api, body)
        if body.get("stream"):
            with state.lock:
                state.requests.append(recorded)
                scripted = state.script.popleft() if state.script else state.responder
            reply = scripted if isinstance(scripted, Reply) else scripted(recorded)
        else:
            reply = state.unstreamed.answer(recorded)
        if reply.hang:
            await _stall(state, reply.hang)
        if reply.status != 200:
            return _failure(reply)
        model = body.get("model", "fake")
        if not body.get("stream"):
            return JSONResponse(_whole_answer(api, reply, model))
        events = _responses_events(reply, model) if api == "responses" else _chat_chunks(reply)
        return StreamingResponse(_sse(events, reply), media_type="text/event-stream")

    async def responses(request: Request) -> Response:
        return await handle(request, "responses")

    async def chat_completions(request: Request) -> Response:
        return await handle(request, "chat_completions")

    async def transcriptions(request: Request) -> Response:
        form = await request.form()
        upload = form["file"]
        assert isinstance(upload, UploadFile), upload
        uploaded = Transcribed(
            fields={name: value for name, value in form.items() if isinstance(value, str)},
            file=(upload.filename or "", upload.content_type or ""),
            audio=await upload.read(),
        )
        reply = state.transcriptions.answer(uploaded)
        if reply.status != 200:
            return _failure(reply)
        return JSONResponse({"text": "".join(reply.deltas)})

    return Starlette(
        routes=[
            Route("/v1/audio/transcriptions", transcriptions, methods=["POST"]),
            Route("/v1/responses", responses, methods=["POST"]),
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        ]
    )


def _failure(reply: Reply) -> Response:
    headers = {"retry-after": reply.retry_after} if reply.retry_after else {}
    return JSONResponse(
        {"error": {"message": f"scripted {reply.status}", "type": "scripted"}},
        status_code=reply.status,
        headers=headers,
    )


async def _stall(state: _State, seconds: float) -> None:
    """Wait ``seconds``, or less if the server stops (a stalled reply must not hold it up)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not state.closing.is_set():  # noqa: ASYNC110
        await asyncio.sleep(0.05)


async def _sse(
    events: Iterator[tuple[dict[str, Any] | str, bool]], reply: Reply
) -> AsyncIterator[bytes]:
    """SSE frames of the events; ``True`` marks a text delta (``cut_after``, ``invalid_after``)."""
    deltas = 0
    for event, is_delta in events:
        if reply.cut_after == deltas:
            raise CutStream
        if reply.invalid_after == deltas:
            yield b"data: {not json\n\n"
            return
        data = event if isinstance(event, str) else json.dumps(event)
        yield f"data: {data}\n\n".encode()
        deltas += is_delta
        await asyncio.sleep(reply.pace)


def _responses_events(reply: Reply, model: str) -> Iterator[tuple[dict[str, Any] | str, bool]]:
    stream = ResponseStream(model=model, parallel_tool_calls=True)
    events = stream.start()
    if reply.reasoning:
        events += stream.reasoning(reply.reasoning)
    if reply.deltas:
        events += stream.message(reply.deltas)
    for tool in reply.calls:
        arguments = json.dumps(tool.arguments)
        events += stream.function_call(
            tool.name,
            arguments,
            call_id=tool.call_id or None,
            item_id=new_id("fc"),
            argument_deltas=_pieces(arguments, tool.chunks),
        )
    events.append(stream.completed(token_usage(*reply.usage)))
    for event in events:
        yield event_json(event), event.type == "response.output_text.delta"


def _whole_answer(api: Api, reply: Reply, model: str) -> dict[str, Any]:
    """A non-streamed answer holding the reply's text (tool calls are not faked here)."""
    said = "".join(reply.deltas)
    if api == "responses":
        stream = ResponseStream(model=model)
        stream.start()
        list(stream.message(reply.deltas))  # the events are not sent, the closed message is kept
        return stream.completed(token_usage(*reply.usage)).response.model_dump(mode="json")
    inputs, outputs = reply.usage
    return {
        "id": f"chatcmpl-{time.monotonic_ns()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": said},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": inputs,
            "completion_tokens": outputs,
            "total_tokens": inputs + outputs,
        },
    }


def _chat_chunks(reply: Reply) -> Iterator[tuple[dict[str, Any] | str, bool]]:
    chunk_id, created = f"chatcmpl-{time.monotonic_ns()}", int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": chunk_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": "fake",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    yield chunk({"role": "assistant", "content": ""}), False
    for delta in reply.deltas:
        yield chunk({"content": delta}), True
    for index, tool in enumerate(reply.calls):
        call_id = tool.call_id or f"call_{time.monotonic_ns()}_{index}"
        opening = {"index": index, "id": call_id, "type": "function"}
        yield (
            chunk({"tool_calls": [{**opening, "function": {"name": tool.name, "arguments": ""}}]}),
            False,
        )
        for piece in _pieces(json.dumps(tool.arguments), tool.chunks):
            yield chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}), False
    yield chunk({}, "tool_calls" if reply.calls else "stop"), False
    inputs, outputs = reply.usage
    usage = {
        "prompt_tokens": inputs,
        "completion_tokens": outputs,
        "total_tokens": inputs + outputs,
    }
    yield (
        {
            "id": chunk_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": "fake",
            "choices": [],
            "usage": usage,
        },
        False,
    )
    yield "[DONE]", False


def _pieces(whole: str, count: int) -> list[str]:
    size = max(1, -(-len(whole) // max(1, count)))
    return [whole[i : i + size] for i in range(0, len(whole), size)] or [""]
