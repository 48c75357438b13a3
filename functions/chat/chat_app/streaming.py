"""One agent turn behind ``ChatServer.respond()``: run, show tool activity, fail and stop cleanly.

Shape: :class:`AgentTurn` runs the agent in a task of its own and hands the ChatKit events to
``respond()`` through a queue. Reasons:

* **Cleanup in the right task.** The turn opens MCP sessions (anyio task groups) that must be
  closed by the task that opened them, and the run must be cancelled when the client goes away.
  If ``respond()`` owned them, a cancellation that reaches the SDK while it is writing to the store
  (between two ``yield``\\ s of ``respond()``) would leave ``respond()`` suspended, to be finalised
  later in some other task. Here the consumer side only has to cancel the turn task, which then
  unwinds itself: cancels the run, closes the MCP sessions.
* **A timeout without yields inside it.** ``agent_turn_timeout_seconds`` bounds the whole turn
  (MCP connect, every model call and tool call) with one ``asyncio.timeout`` around code that never
  suspends into a consumer.

What the user sees and what is remembered:

* Tool activity is streamed live as ``progress_update`` events (:class:`ToolProgressEvent`, which
  also carries the structured call for the simple protocol's view; the extra fields never reach
  the wire). Each finished call is persisted as a ``HiddenContextItem`` holding a
  :class:`~chatkit_backend.tool_calls.ToolCallRecord`, which the SDK stores and hides from ChatKit
  clients, and which the server's converter replays into the next turn's model input.
* On a model error, tool error, ``max_turns`` or timeout, the partial answer is completed as a
  ``thread.item.done`` (stored like any answer), empty partial messages are removed, calls that
  never finished are recorded as failed, and an ``error`` event ends the stream. The thread stays
  usable: every stored item is complete.
* On cancellation (client gone) the SDK's ``handle_stream_cancelled`` stores the partial answer;
  this module cancels the run and re-adds the turn's tool records (``add_thread_item`` is
  idempotent, so a record whose write was interrupted is written, and no record twice).

Nothing here touches the database while the model streams except the SDK's own item writes at
``thread.item.done`` (one per finished item, never per delta).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, cast

from agents import (
    RunConfig,
    RunItem,
    RunItemStreamEvent,
    Runner,
    RunResultStreaming,
    StreamEvent,
    ToolCallItem,
    ToolCallOutputItem,
)
from agents.exceptions import MaxTurnsExceeded
from chatkit.agents import AgentContext, stream_agent_response
from chatkit.types import (
    AssistantMessageContent,
    AssistantMessageContentPartAdded,
    AssistantMessageContentPartDone,
    AssistantMessageContentPartTextDelta,
    AssistantMessageItem,
    ErrorEvent,
    HiddenContextItem,
    ProgressUpdateEvent,
    ThreadItemAddedEvent,
    ThreadItemDoneEvent,
    ThreadItemRemovedEvent,
    ThreadItemUpdatedEvent,
    ThreadMetadata,
    ThreadStreamEvent,
)
from chatkit_backend.context import RequestContext
from chatkit_backend.observability import get_logger
from chatkit_backend.store import PostgresStore
from chatkit_backend.tool_calls import ToolCallRecord
from pydantic import Field
from pydantic_core import to_jsonable_python

from .cancellation import shielded

TIMEOUT_MESSAGE = "The answer took too long and was stopped. Please try again."
MAX_TURNS_MESSAGE = "The assistant needed too many steps and was stopped. Please try again."
FAILURE_MESSAGE = "The assistant could not finish its answer. Please try again."
TOOL_FAILED = "The tool call did not finish."


class AgentSource(Protocol):
    """What a turn needs from :class:`chat_app.agent.AgentFactory`."""

    @property
    def is_offline(self) -> bool:
        """True for the built-in offline model: then there is nowhere to export traces to."""

    def open(self, request_context: RequestContext) -> Any:
        """An async context manager yielding the ``Agent`` of this user's turn."""


class ToolProgressEvent(ProgressUpdateEvent):
    """A ``progress_update`` ("Running add_task…") that also carries the call itself.

    ``call`` and ``finished`` are excluded from serialisation: ChatKit clients get a standard
    progress update, while the simple protocol (which sees the event objects) reports
    ``tool_call`` / ``tool_result`` from them.
    """

    call: ToolCallRecord = Field(exclude=True)
    finished: bool = Field(default=False, exclude=True)


@dataclass
class TurnSettings:
    max_turns: int
    timeout_seconds: float


class _Done:
    """End of the turn's events."""


_DONE = _Done()


@dataclass
class _ToolTracker:
    """Streams tool activity and makes one hidden record per finished call, from run items.

    It watches the run's own event stream (``tool_called`` / ``tool_output`` items) rather than
    run hooks: hooks fire in the runner's task while the consumer may still be behind on the
    model's text, so "Running add_task…" could overtake the sentence that announced it. Events
    pushed from the run stream's position keep the order the model produced.
    """

    context: AgentContext[RequestContext]
    started: dict[str, ToolCallRecord] = field(default_factory=dict)
    records: list[HiddenContextItem] = field(default_factory=list)
    emitted: list[ThreadStreamEvent] = field(default_factory=list)

    def watch(self, result: RunResultStreaming) -> RunResultStreaming:
        """What to give ``stream_agent_response`` instead of ``result``.

        It only calls ``stream_events()``, so a stand-in providing that (and passing every event
        through unchanged) is enough; the cast says so to the type checker.
        """
        return cast(RunResultStreaming, _WatchedRun(result, self))

    async def observe(self, item: RunItem) -> None:
        if isinstance(item, ToolCallItem):
            call_id, name = _raw(item.raw_item, "call_id"), _raw(item.raw_item, "name")
            if not isinstance(call_id, str) or not isinstance(name, str):
                return  # a hosted tool, not a function call
            record = ToolCallRecord(
                call_id=call_id, name=name, arguments=_arguments(_raw(item.raw_item, "arguments"))
            )
            self.started[call_id] = record
            await self._emit(ToolProgressEvent(icon="bolt", text=f"Running {name}…", call=record))
        elif isinstance(item, ToolCallOutputItem):
            started = self.started.pop(str(_raw(item.raw_item, "call_id")), None)
            if started is not None:
                # What the model saw (a string or a list of content parts), replayed verbatim.
                output = to_jsonable_python(_raw(item.raw_item, "output"), fallback=str)
                for event in self._finished(started.model_copy(update={"output": output})):
                    await self._emit(event)

    async def _emit(self, event: ThreadStreamEvent) -> None:
        self.emitted.append(event)
        await self.context.stream(event)

    def fail_unfinished(self) -> list[ThreadStreamEvent]:
        """Record the calls that started but never ended (the run failed or timed out)."""
        events: list[ThreadStreamEvent] = []
        for record in self.started.values():
            events.extend(self._finished(record.model_copy(update={"error": TOOL_FAILED})))
        self.started.clear()
        return events

    def _finished(self, record: ToolCallRecord) -> list[ThreadStreamEvent]:
        item = HiddenContextItem(
            id=self.context.generate_id("tool_call"),
            thread_id=self.context.thread.id,
            created_at=datetime.now(),
            content=record.model_dump(mode="json"),
        )
        self.records.append(item)
        verb = "failed" if record.error else "finished"
        return [
            ToolProgressEvent(
                icon="check-circle", text=f"{record.name} {verb}", call=record, finished=True
            ),
            ThreadItemDoneEvent(item=item),
        ]


class _WatchedRun:
    """``result.stream_events()`` with each run item shown to the tracker before it passes."""

    def __init__(self, result: RunResultStreaming, tracker: _ToolTracker) -> None:
        self._result = result
        self._tracker = tracker

    async def stream_events(self) -> AsyncIterator[StreamEvent]:
        async for event in self._result.stream_events():
            if isinstance(event, RunItemStreamEvent):
                await self._tracker.observe(event.item)
            yield event


def _raw(raw_item: Any, name: str) -> Any:
    """A field of a raw SDK item, which is a pydantic model or a TypedDict depending on origin."""
    return raw_item.get(name) if isinstance(raw_item, dict) else getattr(raw_item, name, None)


class _PartialAnswers:
    """The assistant messages the client has seen start but not finish, with their text so far."""

    def __init__(self) -> None:
        self._items: dict[str, AssistantMessageItem] = {}

    def observe(self, event: ThreadStreamEvent) -> None:
        match event:
            case ThreadItemAddedEvent(item=AssistantMessageItem() as item):
                self._items[item.id] = item.model_copy(deep=True)
            case ThreadItemDoneEvent(item=item):
                self._items.pop(item.id, None)
            case ThreadItemRemovedEvent(item_id=item_id):
                self._items.pop(item_id, None)
            case ThreadItemUpdatedEvent(item_id=item_id, update=update):
                partial = self._items.get(item_id)
                if partial is not None:
                    _apply(partial, update)

    def close(self) -> list[ThreadStreamEvent]:
        """Done events for the non-empty partial answers, removals for the empty ones."""
        events: list[ThreadStreamEvent] = []
        for item in self._items.values():
            if any(part.text.strip() for part in item.content):
                events.append(ThreadItemDoneEvent(item=item))
            else:
                events.append(ThreadItemRemovedEvent(item_id=item.id))
        self._items.clear()
        return events


def _apply(item: AssistantMessageItem, update: object) -> None:
    match update:
        case AssistantMessageContentPartTextDelta(content_index=index, delta=delta):
            _part(item, index).text += delta
        case AssistantMessageContentPartAdded(content_index=index, content=content) | (
            AssistantMessageContentPartDone(content_index=index, content=content)
        ):
            _part(item, index)
            item.content[index] = content.model_copy()


def _part(item: AssistantMessageItem, index: int) -> AssistantMessageContent:
    while len(item.content) <= index:
        item.content.append(AssistantMessageContent(text=""))
    return item.content[index]


class _MessageIds:
    """Gives every assistant message of the turn a fresh store id.

    ``stream_agent_response`` reuses the model's output item id as the thread item id. The
    Responses API makes those unique, but Chat Completions models (any ``OPENAI_BASE_URL``
    server) give every message the SDK's placeholder ``__fake_id__``, and test models reuse ids
    too: the second answer in a thread would then be the "same" item, which the store's
    idempotent add ignores and the client merges. Each ``added`` (or a ``done`` without one)
    starts a new message; its ``updated`` and ``done`` events follow it.
    """

    def __init__(self, context: AgentContext[RequestContext]) -> None:
        self._context = context
        self._open: dict[str, str] = {}

    def rewrite(self, event: ThreadStreamEvent) -> None:
        match event:
            case ThreadItemAddedEvent(item=AssistantMessageItem() as item):
                fresh = self._context.generate_id("message")
                self._open[item.id] = fresh
                item.id = fresh
            case ThreadItemUpdatedEvent(item_id=item_id) if item_id in self._open:
                event.item_id = self._open[item_id]
            case ThreadItemDoneEvent(item=AssistantMessageItem() as item):
                opened = self._open.pop(item.id, None)
                item.id = opened if opened is not None else self._context.generate_id("message")


class AgentTurn:
    """The events of one agent turn over ``input_items`` (see the module docstring)."""

    def __init__(
        self,
        *,
        agents: AgentSource,
        store: PostgresStore,
        thread: ThreadMetadata,
        request_context: RequestContext,
        input_items: list[Any],
        settings: TurnSettings,
    ) -> None:
        self._agents = agents
        self._store = store
        self._thread = thread
        self._request_context = request_context
        self._input_items = input_items
        self._settings = settings
        self._context = AgentContext[RequestContext](
            thread=thread, store=store, request_context=request_context
        )
        self._tools = _ToolTracker(self._context)
        self._partial = _PartialAnswers()
        self._message_ids = _MessageIds(self._context)
        self._forwarded: set[str] = set()
        self._queue: asyncio.Queue[ThreadStreamEvent | _Done] = asyncio.Queue()

    async def events(self) -> AsyncIterator[ThreadStreamEvent]:
        """The turn's ChatKit events, ending with an ``error`` event if the turn failed."""
        task = asyncio.create_task(self._run())
        finished = False
        try:
            while not isinstance(event := await self._queue.get(), _Done):
                yield event
            finished = True
        finally:
            if not finished:
                task.cancel()
            await shielded(self._settle(task, finished))

    async def _settle(self, task: asyncio.Task[None], finished: bool) -> None:
        """Wait for the turn task to unwind; after a cancellation, make sure its records exist."""
        await asyncio.wait({task})
        if finished:
            return
        for record in self._tools.records:
            await self._store.add_thread_item(self._thread.id, record, self._request_context)

    async def _run(self) -> None:
        try:
            async with (
                asyncio.timeout(self._settings.timeout_seconds),
                self._agents.open(self._request_context) as agent,
            ):
                result = Runner.run_streamed(
                    agent,
                    self._input_items,
                    context=self._context,
                    max_turns=self._settings.max_turns,
                    run_config=RunConfig(
                        workflow_name="Chat turn", tracing_disabled=self._agents.is_offline
                    ),
                )
                try:
                    async for event in stream_agent_response(
                        self._context, self._tools.watch(result)
                    ):
                        self._message_ids.rewrite(event)
                        self._partial.observe(event)
                        if (key := _tool_event_key(event)) is not None:
                            self._forwarded.add(key)
                        self._queue.put_nowait(event)
                finally:
                    if not result.is_complete:
                        result.cancel()
        except Exception as exc:
            for event in self._failure_events(exc):
                self._queue.put_nowait(event)
        finally:
            self._queue.put_nowait(_DONE)

    def _failure_events(self, exc: Exception) -> list[ThreadStreamEvent]:
        """Close what the client saw start, record unfinished calls, then the error itself."""
        message = FAILURE_MESSAGE
        if isinstance(exc, TimeoutError):
            message = TIMEOUT_MESSAGE
            get_logger().warning("agent turn timed out", extra={"thread_id": self._thread.id})
        elif isinstance(exc, MaxTurnsExceeded):
            message = MAX_TURNS_MESSAGE
            get_logger().warning("agent turn hit max_turns", extra={"thread_id": self._thread.id})
        else:
            get_logger().exception("agent turn failed", extra={"thread_id": self._thread.id})
        # Tool events still queued in the AgentContext when the run failed never came through.
        undelivered = [
            event for event in self._tools.emitted if _tool_event_key(event) not in self._forwarded
        ]
        return [
            *undelivered,
            *self._tools.fail_unfinished(),
            *self._partial.close(),
            ErrorEvent(code="custom", message=message, allow_retry=True),
        ]


def _tool_event_key(event: ThreadStreamEvent) -> str | None:
    """Identifies the events the tool tracker emits (to tell which ones came through)."""
    if isinstance(event, ToolProgressEvent):
        return f"{event.call.call_id}:{'end' if event.finished else 'start'}"
    if isinstance(event, ThreadItemDoneEvent) and isinstance(event.item, HiddenContextItem):
        return event.item.id
    return None


def _arguments(raw: Any) -> dict[str, Any]:
    """The call's JSON arguments as an object (anything else is kept under ``_raw``)."""
    if isinstance(raw, dict):
        return raw
    try:
        parsed = json.loads(raw) if isinstance(raw, str) and raw else {}
    except ValueError:
        return {"_raw": raw}
    return parsed if isinstance(parsed, dict) else {"_raw": parsed}
