"""The simple SSE protocols, as views of the ChatKit event stream of one user message.

Neither protocol has storage or an agent loop of its own: a simple request becomes the ChatKit
request a ChatKit client would send (``threads.create`` without a thread id,
``threads.add_user_message`` with one), the ChatKit server runs it exactly as for ChatKit clients,
and :class:`SimpleView` translates the resulting ``ThreadStreamEvent``\\ s. So every protocol writes
the same threads and items, and a conversation started in one continues in the others.

* ``POST /chatkit`` with ``{"message", "thread_id"?}``: JSON events (:data:`SimpleEvent`), the
  first always ``thinking`` with the thread id, then ``text`` deltas, ``tool_call`` /
  ``tool_result`` while tools run, ``widget`` when a tool's result is shown as a widget (its
  ChatKit JSON, the item id for actions, and its text), ``error`` if the turn failed, and
  ``data: [DONE]``.
* ``POST /api/chat/stream?message=&conversation_id=``: only the answer's text, one SSE event per
  chunk (a ``data:`` line per line of it), failures as an ``event: error``, then ``[DONE]``. The
  stream opens with an SSE comment naming the thread (clients ignore comments), so the response
  starts, and pre-stream errors are decided, before the model is called.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal, Protocol

from chatkit.types import (
    AssistantMessageContentPartTextDelta,
    AssistantMessageItem,
    InferenceOptions,
    ProgressUpdateEvent,
    ThreadAddUserMessageParams,
    ThreadCreatedEvent,
    ThreadCreateParams,
    ThreadItemAddedEvent,
    ThreadItemDoneEvent,
    ThreadItemUpdatedEvent,
    ThreadsAddUserMessageReq,
    ThreadsCreateReq,
    ThreadStreamEvent,
    UserMessageInput,
    UserMessageTextContent,
    WidgetItem,
)
from chatkit.types import ErrorEvent as ChatKitErrorEvent
from pydantic import BaseModel, Field, field_validator

from .sse import DONE, Chunks, Ready, sse_json, sse_text
from .turn_events import FAILURE_MESSAGE, ToolCallShown

MESSAGE_SEPARATOR = "\n\n"
"""Text sent between two assistant messages of one turn (before and after a tool call)."""


class SimpleChatRequest(BaseModel):
    """``{"message": "...", "thread_id": "..."?, "attachments": [...]?, "model": "..."?}``; an
    absent thread id starts a new thread; ``attachments`` are ids from ``attachments.create``
    (uploaded); ``model`` one of ``MODEL_CHOICES`` (``GET /api/composer``)."""

    message: str
    thread_id: str | None = None
    attachments: list[str] = Field(default_factory=list)
    model: str | None = None

    @field_validator("message")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value

    def to_chatkit(self) -> ThreadsCreateReq | ThreadsAddUserMessageReq:
        """The ChatKit request a ChatKit client would send for this message."""
        message = UserMessageInput(
            content=[UserMessageTextContent(text=self.message)],
            attachments=list(self.attachments),
            inference_options=InferenceOptions(model=self.model),
        )
        if self.thread_id is None:
            return ThreadsCreateReq(params=ThreadCreateParams(input=message))
        return ThreadsAddUserMessageReq(
            params=ThreadAddUserMessageParams(thread_id=self.thread_id, input=message)
        )


class ThinkingEvent(BaseModel):
    """The assistant is working: first event of every stream (with ``thread_id``), and progress."""

    type: Literal["thinking"] = "thinking"
    thread_id: str | None = None
    content: str | None = None


class TextEvent(BaseModel):
    """A piece of the answer's text."""

    type: Literal["text"] = "text"
    content: str


class ToolCallEvent(BaseModel):
    """A tool is being called."""

    type: Literal["tool_call"] = "tool_call"
    call_id: str
    name: str
    arguments: dict[str, Any]


class ToolResultEvent(BaseModel):
    """A tool call finished (``error`` set when it failed)."""

    type: Literal["tool_result"] = "tool_result"
    call_id: str
    name: str
    output: Any = None
    error: str | None = None


class WidgetEvent(BaseModel):
    """A widget was added to the thread (``widget``: the ChatKit widget JSON, ``item_id``: the
    item its actions name in ``threads.custom_action``, ``copy_text``: what it shows, in words)."""

    type: Literal["widget"] = "widget"
    item_id: str
    widget: dict[str, Any]
    copy_text: str | None = None


class ErrorEvent(BaseModel):
    """The turn failed; what was answered until then is stored, and the thread stays usable."""

    type: Literal["error"] = "error"
    message: str


SimpleEvent = Annotated[
    ThinkingEvent | TextEvent | ToolCallEvent | ToolResultEvent | WidgetEvent | ErrorEvent,
    Field(discriminator="type"),
]


class SimpleView:
    """Translates the ChatKit events of one simple request; knows the thread id after the first."""

    def __init__(self, thread_id: str | None) -> None:
        self.thread_id = thread_id
        self._wrote_text = False
        self._streamed_items: set[str] = set()

    async def events(
        self, source: AsyncIterator[ThreadStreamEvent | Ready]
    ) -> AsyncIterator[SimpleEvent | Ready]:
        """The simple events, :data:`~chat_app.sse.READY` passed on where the source has it."""
        started = False
        async for event in source:
            if isinstance(event, Ready):
                yield event
                continue
            if isinstance(event, ThreadCreatedEvent):
                self.thread_id = event.thread.id
            if not started:
                started = True
                yield ThinkingEvent(thread_id=self.thread_id)
            for simple in self._translate(event):
                yield simple

    def _translate(self, event: ThreadStreamEvent) -> list[SimpleEvent]:
        match event:
            case ThreadItemAddedEvent(item=AssistantMessageItem()) if self._wrote_text:
                return [TextEvent(content=MESSAGE_SEPARATOR)]
            case ThreadItemUpdatedEvent(
                item_id=item_id, update=AssistantMessageContentPartTextDelta(delta=delta)
            ):
                self._streamed_items.add(item_id)
                return self._text(delta)
            case ThreadItemDoneEvent(item=AssistantMessageItem() as item) if (
                item.id not in self._streamed_items
            ):
                return self._text("".join(part.text for part in item.content))
            case ToolCallShown(call=call, finished=False):
                return [
                    ToolCallEvent(call_id=call.call_id, name=call.name, arguments=call.arguments)
                ]
            case ToolCallShown(call=call, finished=True):
                return [
                    ToolResultEvent(
                        call_id=call.call_id, name=call.name, output=call.result(), error=call.error
                    )
                ]
            case ThreadItemDoneEvent(item=WidgetItem() as item):
                return [
                    WidgetEvent(
                        item_id=item.id,
                        widget=item.widget.model_dump(mode="json", exclude_none=True),
                        copy_text=item.copy_text,
                    )
                ]
            case ProgressUpdateEvent(text=text):
                return [ThinkingEvent(content=text)]
            case ChatKitErrorEvent(message=message):
                return [ErrorEvent(message=message or FAILURE_MESSAGE)]
        return []

    def _text(self, text: str) -> list[SimpleEvent]:
        if not text:
            return []
        self._wrote_text = True
        return [TextEvent(content=text)]


class Framing(Protocol):
    """How one of the simple protocols writes its events."""

    def encode(self, events: AsyncIterator[SimpleEvent | Ready]) -> Chunks:
        """The response body for ``events``, ending with ``[DONE]`` (``READY`` passed on)."""

    def failure(self, exc: Exception) -> bytes:
        """The last bytes of a stream that failed after it started."""


class JsonEventFraming:
    """``data: {"type": ...}`` per event (``POST /chatkit`` with a ``message`` body)."""

    async def encode(self, events: AsyncIterator[SimpleEvent | Ready]) -> Chunks:
        async for event in events:
            yield (
                event
                if isinstance(event, Ready)
                else sse_json(event.model_dump_json(exclude_none=True))
            )
        yield DONE

    def failure(self, exc: Exception) -> bytes:
        return sse_json(ErrorEvent(message=FAILURE_MESSAGE).model_dump_json()) + DONE


class TextFraming:
    """Only the answer's text (``POST /api/chat/stream``)."""

    async def encode(self, events: AsyncIterator[SimpleEvent | Ready]) -> Chunks:
        async for event in events:
            match event:
                case Ready():
                    yield event
                case ThinkingEvent(thread_id=str(thread_id)):
                    yield f": thread {thread_id}\n\n".encode()
                case TextEvent(content=content):
                    yield sse_text(content)
                case ErrorEvent(message=message):
                    yield sse_text(message, event="error")
        yield DONE

    def failure(self, exc: Exception) -> bytes:
        return sse_text(FAILURE_MESSAGE, event="error") + DONE
