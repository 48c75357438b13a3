"""What the chat function's HTTP routes do: pick the protocol, run it, map errors before streaming.

A streaming answer is an :class:`~chat_app.sse.EventStream` that is awaited until it is ready
(the user message stored, ``stream_options`` reached) before the response is returned, so what
fails before (a missing or foreign thread, an invalid request, a too long message) is answered
as JSON with its status (``NotFoundError`` -> 404, validation and the SDK's ``ValueError``\\ s ->
400, :class:`~chatkit_backend.errors.AppError` its own), never as a ``200`` holding an error.
Non-streaming requests go through the SDK's public ``process()``.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from typing import Any

from chatkit.errors import ErrorCode
from chatkit.server import NonStreamingResult
from chatkit.store import NotFoundError
from chatkit.types import (
    ChatKitReq,
    StreamingReq,
    ThreadsAddClientToolOutputReq,
    ThreadsAddStructuredInputReq,
    ThreadsAddUserMessageReq,
    ThreadsCreateReq,
    ThreadsRetryAfterItemReq,
    ThreadStreamEvent,
    ThreadsUpdateReq,
    is_streaming_req,
)
from chatkit.types import ErrorEvent as ChatKitErrorEvent
from chatkit_backend.attachments import AttachmentFiles
from chatkit_backend.caller import Caller
from chatkit_backend.db import Database
from chatkit_backend.errors import BadRequest, NotFound, PayloadTooLarge
from chatkit_backend.held_write import HELD_WRITE, HeldWrite
from chatkit_backend.init_phase import complete_models
from chatkit_backend.settings import Settings
from chatkit_backend.store import ADMISSION, NewestWanted, PostgresStore
from chatkit_backend.web import THREAD_ID_HEADER, validation_errors, validation_summary
from pydantic import TypeAdapter, ValidationError
from starlette.responses import Response

from .sdk_events import ready_after_options, thread_events
from .server import ChatServer
from .simple_protocol import Framing, JsonEventFraming, SimpleChatRequest, SimpleView, TextFraming
from .sse import Chunks, EventStream, Ready, sse_json
from .streaming import AgentSource
from .turn_limits import CURRENT_LEASE, Clock, Lease, TurnLimits

CHATKIT_REQUEST: TypeAdapter[ChatKitReq] = TypeAdapter(ChatKitReq)

SDK_REQUEST_MODELS = ("chatkit.types",)
"""Modules whose models with deferred schemas are completed when the service is built (init):
the SDK's ``process()`` creates a ``TypeAdapter`` of the request union on every call, which
regenerates the schema of every model still incomplete, on every request."""

TRANSCRIBE = "input.transcribe"
"""The one request type whose body may exceed ``MAX_REQUEST_BYTES`` (dictated audio)."""

JSON_EVENTS = JsonEventFraming()
TEXT_CHUNKS = TextFraming()

TURNS = (
    ThreadsCreateReq,
    ThreadsAddUserMessageReq,
    ThreadsRetryAfterItemReq,
    ThreadsAddClientToolOutputReq,
    ThreadsAddStructuredInputReq,
)
"""The streaming requests that run the model, so count against the per-user turn limits
(widget actions do not call the model; non-streaming requests are reads or small writes)."""


class ChatService:
    """The chat function's operations, over one :class:`ChatServer`."""

    def __init__(self, server: ChatServer, limits: TurnLimits) -> None:
        self.server = server
        self.limits = limits

    @classmethod
    def build(
        cls,
        settings: Settings,
        database: Database,
        agents: AgentSource,
        files: AttachmentFiles | None = None,
        limits_clock: Clock | None = None,
    ) -> ChatService:
        """The service, the ChatKit request models completed (:data:`SDK_REQUEST_MODELS`)."""
        complete_models(SDK_REQUEST_MODELS)
        files = files or AttachmentFiles.from_settings(settings)
        server = ChatServer(PostgresStore(database, files), agents, settings)
        return cls(server, TurnLimits(database, settings, limits_clock or time.time))

    async def chatkit(self, body: bytes, caller: Caller) -> Response:
        """``POST /chatkit``: ChatKit protocol when the body has ``type``, else the simple one."""
        payload = _json_object(body)
        limit = self.server.settings.max_request_bytes
        if len(body) > limit and payload.get("type") != TRANSCRIBE:
            raise PayloadTooLarge(f"Request too large (at most {limit} bytes)")
        if "type" in payload:
            return await self._chatkit(payload, caller)
        if "message" in payload:
            with _client_errors():
                request = SimpleChatRequest.model_validate(payload)
            return await self.stream_simple_answer(request, caller, JSON_EVENTS)
        raise BadRequest("Expected a ChatKit request (with 'type') or {'message': ...}")

    def composer(self) -> dict[str, Any]:
        """``GET /api/composer``: the model picker's entries and the tool menu's tool ids."""
        return self.server.choices.offered()

    async def text_stream(
        self, message: str | None, conversation_id: str | None, caller: Caller
    ) -> Response:
        """``POST /api/chat/stream``: the answer as plain text chunks."""
        with _client_errors():
            request = SimpleChatRequest.model_validate(
                {"message": message, "thread_id": conversation_id}
            )
        return await self.stream_simple_answer(request, caller, TEXT_CHUNKS)

    async def stream_simple_answer(
        self, request: SimpleChatRequest, caller: Caller, framing: Framing
    ) -> Response:
        """One message of a simple protocol, answered as ``framing`` writes the events."""
        view = SimpleView(request.thread_id)
        chatkit_request = request.to_chatkit()
        with _client_errors():
            await self.server.check(chatkit_request, caller)
            stream = await self._start(
                chatkit_request,
                caller,
                lambda events: framing.encode(view.events(events)),
                framing.failure,
            )
        headers = {THREAD_ID_HEADER: view.thread_id} if view.thread_id else None
        return stream.response(headers)

    async def _chatkit(self, payload: dict[str, Any], caller: Caller) -> Response:
        with _client_errors():
            request = CHATKIT_REQUEST.validate_python(payload)
            await self.server.check(request, caller)
            if not is_streaming_req(request):
                if isinstance(request, ThreadsUpdateReq):
                    await self.server.mark_renamed(request.params, caller)
                # Re-serialised: check() may have normalised it (the title of threads.update).
                result = await self.server.process(CHATKIT_REQUEST.dump_json(request), caller)
                assert isinstance(result, NonStreamingResult)
                return Response(result.json, media_type="application/json")
            stream = await self._start(request, caller, _chatkit_chunks, _chatkit_failure)
        return stream.response()

    async def _start(
        self,
        request: StreamingReq,
        caller: Caller,
        encode: Callable[[AsyncIterator[ThreadStreamEvent | Ready]], Chunks],
        on_error: Callable[[Exception], bytes],
    ) -> EventStream:
        """The request's event stream, started (see :class:`EventStream`).

        A turn's admission by the per-user limits runs while the SDK reads its thread (a new
        message's history with it, :mod:`.early_history`); the store's writes and the
        model call wait for it (:data:`~chatkit_backend.store.ADMISSION`), so a refused turn is a
        429 with nothing stored and no model call. A new message's insert runs while the model
        is called (:mod:`~chatkit_backend.held_write`); the response starts once it is stored.
        The lease goes with the stream, whose task gives it back when the stream ends, however it
        ends, with the tokens the turn reported.
        """
        lease = self.limits.start(caller) if isinstance(request, TURNS) else None
        held = HeldWrite() if isinstance(request, ThreadsAddUserMessageReq) else None
        early: NewestWanted | None = None
        stream: EventStream | None = None
        try:
            with _turn_context(lease, held):
                early = self.server.read_history_early(request, caller)
                events = ready_after_options(thread_events(self.server, request, caller))
                stream = EventStream(self._finishing(encode(events), lease, early), on_error)
            await stream.started()
            if held is not None:
                await held.stored()
        except BaseException:
            if stream is not None:
                await stream.close()
            if early is not None:
                early.cancel()
            await self.limits.finish(lease)
            raise
        return stream

    async def _finishing(
        self, chunks: Chunks, lease: Lease | None, early: NewestWanted | None
    ) -> Chunks:
        try:
            async for chunk in chunks:
                yield chunk
        finally:
            if early is not None:
                early.cancel()
            await self.limits.finish(lease)


async def _chatkit_chunks(events: AsyncIterator[ThreadStreamEvent | Ready]) -> Chunks:
    async for event in events:
        yield event if isinstance(event, Ready) else sse_json(chatkit_json(event))


def chatkit_json(event: ThreadStreamEvent | ChatKitErrorEvent) -> bytes:
    """An event as the SDK serialises it (aliases, no nulls, no integration-only metadata)."""
    return event.model_dump_json(
        by_alias=True, exclude_none=True, context={"exclude_metadata": True}
    ).encode()


def _chatkit_failure(exc: Exception) -> bytes:
    return sse_json(chatkit_json(ChatKitErrorEvent(code=ErrorCode.STREAM_ERROR, allow_retry=True)))


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except ValueError as exc:
        raise BadRequest("Request body is not valid JSON") from exc
    if not isinstance(payload, dict):
        raise BadRequest("Request body must be a JSON object")
    return payload


@contextmanager
def _turn_context(lease: Lease | None, held: HeldWrite | None) -> Iterator[None]:
    """The turn's lease, admission and held write, for the tasks the turn starts meanwhile (the
    stream) to copy as they are created."""
    lease_token = CURRENT_LEASE.set(lease)
    admission_token = ADMISSION.set(lease.admission if lease is not None else None)
    held_token = HELD_WRITE.set(held)
    try:
        yield
    finally:
        HELD_WRITE.reset(held_token)
        ADMISSION.reset(admission_token)
        CURRENT_LEASE.reset(lease_token)


@contextmanager
def _client_errors() -> Iterator[None]:
    """Map the errors raised before a response starts to the client errors they are."""
    try:
        yield
    except NotFoundError as exc:
        raise NotFound(str(exc) or None) from exc
    except ValidationError as exc:
        raise BadRequest(validation_summary(validation_errors(exc.errors()))) from exc
    except ValueError as exc:
        raise BadRequest(str(exc) or None) from exc
