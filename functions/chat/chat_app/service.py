"""What the chat function's HTTP routes do: pick the protocol, run it, map errors before streaming.

Every streaming answer is an :class:`~chat_app.sse.EventStream` whose first chunk is awaited
before the response is returned: whatever fails before the first byte (a missing or foreign
thread, an invalid request, a too long message) is raised here and answered as JSON with its
status by the app's error handlers, never as a ``200`` stream holding only an error.

Error mapping (before the stream starts): the store's ``NotFoundError`` (missing and foreign
alike) -> 404; pydantic validation -> 400 with the validation message; the ``ValueError``\\ s the
ChatKit SDK raises for requests that do not fit the thread (e.g. retrying an item that is not a
user message) -> 400; :class:`~chatkit_backend.errors.AppError` keeps its own status.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

from chatkit.errors import ErrorCode
from chatkit.store import NotFoundError
from chatkit.types import ChatKitReq, ThreadStreamEvent, is_streaming_req
from chatkit.types import ErrorEvent as ChatKitErrorEvent
from chatkit_backend.caller import Caller
from chatkit_backend.db import Database
from chatkit_backend.errors import BadRequest, NotFound
from chatkit_backend.settings import Settings
from chatkit_backend.store import PostgresStore
from chatkit_backend.web import THREAD_ID_HEADER, validation_errors, validation_summary
from pydantic import TypeAdapter, ValidationError
from starlette.responses import Response

from .server import ChatServer
from .simple_protocol import Framing, JsonEventFraming, SimpleChatRequest, SimpleView, TextFraming
from .sse import EventStream, sse_json
from .streaming import AgentSource

CHATKIT_REQUEST: TypeAdapter[ChatKitReq] = TypeAdapter(ChatKitReq)

JSON_EVENTS = JsonEventFraming()
TEXT_CHUNKS = TextFraming()


class ChatService:
    """The chat function's operations, over one :class:`ChatServer`."""

    def __init__(self, server: ChatServer) -> None:
        self.server = server

    @classmethod
    def build(cls, settings: Settings, database: Database, agents: AgentSource) -> ChatService:
        return cls(ChatServer(PostgresStore(database), agents, settings))

    async def chatkit(self, body: bytes, user: Caller) -> Response:
        """``POST /chatkit``: ChatKit protocol when the body has ``type``, else the simple one."""
        payload = _json_object(body)
        if "type" in payload:
            return await self._chatkit(payload, user)
        if "message" in payload:
            with _client_errors():
                request = SimpleChatRequest.model_validate(payload)
            return await self.simple(request, user, JSON_EVENTS)
        raise BadRequest("Expected a ChatKit request (with 'type') or {'message': ...}")

    async def text_stream(
        self, message: str | None, conversation_id: str | None, user: Caller
    ) -> Response:
        """``POST /api/chat/stream``: the answer as plain text chunks."""
        with _client_errors():
            request = SimpleChatRequest.model_validate(
                {"message": message, "thread_id": conversation_id}
            )
        return await self.simple(request, user, TEXT_CHUNKS)

    async def simple(self, request: SimpleChatRequest, user: Caller, framing: Framing) -> Response:
        view = SimpleView(request.thread_id)
        with _client_errors():
            events = await self.server.open_stream(request.to_chatkit(), user)
            stream = EventStream(framing.encode(view.events(events)), framing.failure)
            await stream.started()
        headers = {THREAD_ID_HEADER: view.thread_id} if view.thread_id else None
        return stream.response(headers)

    async def _chatkit(self, payload: dict[str, Any], user: Caller) -> Response:
        with _client_errors():
            request = CHATKIT_REQUEST.validate_python(payload)
            if not is_streaming_req(request):
                answer = await self.server.answer(request, user)
                return Response(answer, media_type="application/json")
            events = await self.server.open_stream(request, user)
            stream = EventStream(_chatkit_chunks(events), _chatkit_failure)
            await stream.started()
        return stream.response()


async def _chatkit_chunks(events: AsyncIterator[ThreadStreamEvent]) -> AsyncIterator[bytes]:
    async for event in events:
        yield sse_json(chatkit_json(event))


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
