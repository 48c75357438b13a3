"""One agent turn behind ``ChatServer.respond()``: run, show tool activity, fail and stop cleanly.

The turn runs inline in ``respond()`` (the SDK's run task is the only task under it) and never
has a task cancelled under it: a hang-up or the turn's deadline stops the run
(``RunResultStreaming.cancel()``), whose event stream then ends, so the SDK helpers finish their
own tasks. Tool activity streams as ``progress_update`` events and each finished call is stored
as a hidden record the next turn's input replays. A failed turn completes what the client saw
start (plus the words received before a cut) and ends with an ``error`` event; a hang-up
raises ``CancelledError`` so the SDK stores the partial answer. No database access per delta.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol, cast

from agents import (
    ItemHelpers,
    Model,
    ModelResponse,
    RunConfig,
    RunContextWrapper,
    RunHooks,
    RunItem,
    RunItemStreamEvent,
    Runner,
    RunResultStreaming,
    StreamEvent,
    ToolCallItem,
    ToolCallOutputItem,
)
from agents.exceptions import MaxTurnsExceeded
from agents.items import TResponseStreamEvent
from agents.retry import ModelRetryAdvice, ModelRetryAdviceRequest
from agents.tool_context import ToolContext
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
from chatkit_backend.caller import Caller
from chatkit_backend.observability import get_logger, get_metrics
from chatkit_backend.store import PostgresStore
from chatkit_backend.tool_calls import ToolCallRecord
from openai.types.responses import (
    ResponseCompletedEvent,
    ResponseOutputItemDoneEvent,
    ResponseOutputMessage,
    ResponseOutputText,
    ResponseTextDeltaEvent,
)
from pydantic import Field
from pydantic_core import to_jsonable_python

from .cancellation import CURRENT_HANG_UP, shielded

TIMEOUT_MESSAGE = "The answer took too long and was stopped. Please try again."
MAX_TURNS_MESSAGE = "The assistant needed too many steps and was stopped. Please try again."
FAILURE_MESSAGE = "The assistant could not finish its answer. Please try again."
TOOL_FAILED = "The tool call did not finish."


class AgentSource(Protocol):
    """What a turn needs from :class:`chat_app.agent.AgentFactory`."""

    @property
    def is_offline(self) -> bool:
        """True for the built-in offline model: then there is nowhere to export traces to."""

    def open(self, caller: Caller) -> Any:
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


class _RunTracker(RunHooks[Any]):
    """What the run did (from run hooks) and what the client is shown of its tools (run items).

    Two sources because each is right about one thing. Run hooks fire in the runner's task as
    things happen, even when the SDK later drops the events still queued for a failed run, so
    they are the truth about which model messages were finished (:attr:`messages`) and which
    tool calls ran and what they returned. Run items (``tool_called`` / ``tool_output``) arrive
    at their place in the run's event stream, after the text the model wrote before the call, so
    they decide *when* the client sees "Running add_task…" and when a call's record is handed to
    the SDK for storage. On failure or cancellation, :meth:`settle` gives the record of every
    call that ran, those that never finished marked as failed.
    """

    def __init__(self, context: AgentContext[Caller]) -> None:
        self.context = context
        self.messages: list[str] = []
        self.calls: dict[str, ToolCallRecord] = {}
        self.finished: set[str] = set()
        self.items: dict[str, HiddenContextItem] = {}

    def watch(self, result: RunResultStreaming) -> RunResultStreaming:
        """What to give ``stream_agent_response`` instead of ``result``.

        It only calls ``stream_events()``, so a stand-in providing that (and passing every event
        through unchanged) is enough; the cast says so to the type checker.
        """
        return cast(RunResultStreaming, _WatchedRun(result, self))

    # --- run hooks (the runner's task) ----------------------------------------------------------

    async def on_llm_end(
        self, context: RunContextWrapper[Any], agent: Any, response: ModelResponse
    ) -> None:
        self.messages.extend(_message_texts(response))

    async def on_tool_start(self, context: RunContextWrapper[Any], agent: Any, tool: Any) -> None:
        if isinstance(context, ToolContext):
            self._start(context.tool_call_id, context.tool_name, context.tool_arguments)

    async def on_tool_end(
        self, context: RunContextWrapper[Any], agent: Any, tool: Any, result: object
    ) -> None:
        if isinstance(context, ToolContext) and context.tool_call is not None:
            # The output exactly as the SDK hands it to the model.
            raw = ItemHelpers.tool_call_output_item(context.tool_call, result)
            self._finish(context.tool_call_id, raw["output"])

    # --- run items (their place in the event stream) --------------------------------------------

    async def observe(self, item: RunItem) -> None:
        if isinstance(item, ToolCallItem):
            call_id, name = _raw(item.raw_item, "call_id"), _raw(item.raw_item, "name")
            if isinstance(call_id, str) and isinstance(name, str):  # else: a hosted tool
                record = self._start(call_id, name, _raw(item.raw_item, "arguments"))
                await self.context.stream(_started(record))
        elif isinstance(item, ToolCallOutputItem):
            call_id = _raw(item.raw_item, "call_id")
            if call_id in self.calls:
                self._finish(call_id, _raw(item.raw_item, "output"))
                for event in self._finished_events(call_id):
                    await self.context.stream(event)

    # --- failure and cancellation ---------------------------------------------------------------

    def settle(self) -> list[HiddenContextItem]:
        """The record of every call that ran; calls that never finished are marked failed."""
        for call_id in self.calls.keys() - self.finished:
            self.calls[call_id] = self.calls[call_id].model_copy(update={"error": TOOL_FAILED})
            self.finished.add(call_id)
        return [self._item(call_id) for call_id in self.calls]

    def missed(self, delivered: set[str]) -> list[ThreadStreamEvent]:
        """After :meth:`settle`: the tool events whose key is not in ``delivered``."""
        events: list[ThreadStreamEvent] = []
        for call_id, record in self.calls.items():
            events.append(_started(record))
            events.extend(self._finished_events(call_id))
        return [event for event in events if _tool_event_key(event) not in delivered]

    # --- helpers --------------------------------------------------------------------------------

    def _start(self, call_id: str, name: str, arguments: Any) -> ToolCallRecord:
        if call_id not in self.calls:
            self.calls[call_id] = ToolCallRecord(
                call_id=call_id, name=name, arguments=_arguments(arguments)
            )
        return self.calls[call_id]

    def _finish(self, call_id: str, output: Any) -> None:
        if call_id in self.calls and call_id not in self.finished:
            self.calls[call_id] = self.calls[call_id].model_copy(
                update={"output": to_jsonable_python(output, fallback=str)}
            )
            self.finished.add(call_id)

    def _finished_events(self, call_id: str) -> list[ThreadStreamEvent]:
        record = self.calls[call_id]
        verb = "failed" if record.error else "finished"
        return [
            ToolProgressEvent(
                icon="check-circle", text=f"{record.name} {verb}", call=record, finished=True
            ),
            ThreadItemDoneEvent(item=self._item(call_id)),
        ]

    def _item(self, call_id: str) -> HiddenContextItem:
        """The call's record item, made once (re-adding the same id is a no-op in the store)."""
        if call_id not in self.items:
            self.items[call_id] = HiddenContextItem(
                id=self.context.generate_id("tool_call"),
                thread_id=self.context.thread.id,
                created_at=datetime.now(),
                content=self.calls[call_id].model_dump(mode="json"),
            )
        return self.items[call_id]


def _started(record: ToolCallRecord) -> ToolProgressEvent:
    return ToolProgressEvent(icon="bolt", text=f"Running {record.name}…", call=record)


class _WatchedRun:
    """``result.stream_events()`` with each run item shown to the tracker before it passes."""

    def __init__(self, result: RunResultStreaming, tracker: _RunTracker) -> None:
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


class _Answers:
    """The turn's assistant messages as the client saw them, to close them if the turn fails.

    Tracks the messages the client saw start but not finish (with their text so far) and how many
    it saw finish. When a run fails, the Agents SDK drops the events still queued for the client,
    which can include whole messages the model had finished (text before a tool call that then
    raised at once); :meth:`close` completes those from the run's finished model responses.
    """

    def __init__(self, thread: ThreadMetadata, context: AgentContext[Caller]) -> None:
        self._thread = thread
        self._context = context
        self._open: dict[str, AssistantMessageItem] = {}
        self._finished = 0

    def observe(self, event: ThreadStreamEvent) -> None:
        match event:
            case ThreadItemAddedEvent(item=AssistantMessageItem() as item):
                self._open[item.id] = item.model_copy(deep=True)
            case ThreadItemDoneEvent(item=AssistantMessageItem() as item):
                self._open.pop(item.id, None)
                self._finished += 1
            case ThreadItemRemovedEvent(item_id=item_id):
                self._open.pop(item_id, None)
            case ThreadItemUpdatedEvent(item_id=item_id, update=update):
                partial = self._open.get(item_id)
                if partial is not None:
                    _apply(partial, update)

    def close(self, produced: list[str], unfinished: str) -> list[ThreadStreamEvent]:
        """Events that finish what the client has not seen finish.

        ``produced``: the text of every message the model finished this turn, in order;
        ``unfinished``: the text received of the message it was writing when the run failed.
        Text the client has not been sent yet is sent as a delta first (what the client was
        sent is what is stored); unfinished empty messages are removed.
        """
        events: list[ThreadStreamEvent] = []
        still_open = list(self._open.values())
        for text in [*produced[self._finished :], *([unfinished] if unfinished else [])]:
            item = still_open.pop(0) if still_open else self._new_message()
            seen = "".join(part.text for part in item.content)
            if item.id in self._open and text.startswith(seen) and len(text) > len(seen):
                delta = AssistantMessageContentPartTextDelta(
                    content_index=0, delta=text[len(seen) :]
                )
                events.append(ThreadItemUpdatedEvent(item_id=item.id, update=delta))
            item.content = [AssistantMessageContent(text=text if len(text) >= len(seen) else seen)]
            events.append(ThreadItemDoneEvent(item=item))
        for item in still_open:
            if any(part.text.strip() for part in item.content):
                events.append(ThreadItemDoneEvent(item=item))
            else:
                events.append(ThreadItemRemovedEvent(item_id=item.id))
        self._open.clear()
        return events

    def _new_message(self) -> AssistantMessageItem:
        return AssistantMessageItem(
            id=self._context.generate_id("message"),
            thread_id=self._thread.id,
            created_at=datetime.now(),
            content=[],
        )


def _message_texts(response: ModelResponse) -> list[str]:
    """The text of each message of a model response, in order."""
    return [
        "".join(
            part.text if isinstance(part, ResponseOutputText) else part.refusal
            for part in output.content
        )
        for output in response.output
        if isinstance(output, ResponseOutputMessage)
    ]


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

    def __init__(self, context: AgentContext[Caller]) -> None:
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


class _TurnMetrics:
    """CloudWatch metrics of one turn: time to first token, duration, tokens (EMF, per request).

    Milliseconds from the start of the turn (agent set up, MCP servers connected, model called)
    to the first text delta leaving the turn, and to its end; tokens from the run's usage.
    """

    def __init__(self) -> None:
        self._started = time.perf_counter()
        self._first_token_seen = False

    def observe(self, event: ThreadStreamEvent) -> None:
        if (
            not self._first_token_seen
            and isinstance(event, ThreadItemUpdatedEvent)
            and isinstance(event.update, AssistantMessageContentPartTextDelta)
        ):
            self._first_token_seen = True
            _measure("TimeToFirstToken", self._elapsed_ms(), "Milliseconds")

    def finish(self, result: RunResultStreaming | None) -> None:
        _measure("TurnDuration", self._elapsed_ms(), "Milliseconds")
        if result is not None:
            usage = result.context_wrapper.usage
            _measure("InputTokens", usage.input_tokens, "Count")
            _measure("OutputTokens", usage.output_tokens, "Count")

    def _elapsed_ms(self) -> float:
        return (time.perf_counter() - self._started) * 1000


class _ReceivedText(Model):
    """The turn's model, noting the text of the message it is streaming until that is done.

    When a stream breaks, the Agents SDK drops the events it had queued for the consumer: words
    the model sent just before the cut would be lost. This is what arrived, from the model's
    side, so a failed turn can still send and store it.
    """

    def __init__(self, model: Model) -> None:
        self._model = model
        self.unfinished = ""

    async def get_response(self, *args: Any, **kwargs: Any) -> ModelResponse:
        return await self._model.get_response(*args, **kwargs)

    async def stream_response(
        self, *args: Any, **kwargs: Any
    ) -> AsyncIterator[TResponseStreamEvent]:
        self.unfinished = ""
        async for event in self._model.stream_response(*args, **kwargs):
            if isinstance(event, ResponseTextDeltaEvent):
                self.unfinished += event.delta
            elif isinstance(event, ResponseOutputItemDoneEvent | ResponseCompletedEvent):
                self.unfinished = ""
            yield event

    def get_retry_advice(self, request: ModelRetryAdviceRequest) -> ModelRetryAdvice | None:
        return self._model.get_retry_advice(request)

    async def close(self) -> None:
        await self._model.close()


class AgentTurn:
    """The events of one agent turn over ``input_items`` (see the module docstring)."""

    def __init__(
        self,
        *,
        agents: AgentSource,
        store: PostgresStore,
        thread: ThreadMetadata,
        caller: Caller,
        input_items: list[Any],
        settings: TurnSettings,
    ) -> None:
        self._agents = agents
        self._store = store
        self._thread = thread
        self._caller = caller
        self._input_items = input_items
        self._settings = settings
        self._context = AgentContext[Caller](thread=thread, store=store, request_context=caller)
        self._tracker = _RunTracker(self._context)
        self._answers = _Answers(thread, self._context)
        self._message_ids = _MessageIds(self._context)
        self._forwarded: set[str] = set()
        self._stopped_by: Literal["hang_up", "timeout"] | None = None
        self._result: RunResultStreaming | None = None
        self._received: _ReceivedText | None = None

    async def events(self) -> AsyncIterator[ThreadStreamEvent]:
        """The turn's ChatKit events, ending with an ``error`` event if the turn failed.

        Raises ``CancelledError`` (after storing the records of the tools that ran) when the
        client hung up, so the SDK stores the partial answer.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._settings.timeout_seconds
        timer = loop.call_at(deadline, self._stop, "timeout")
        hang_up = CURRENT_HANG_UP.get()
        unsubscribe = hang_up.subscribe(lambda: self._stop("hang_up")) if hang_up else None
        metrics = _TurnMetrics()
        try:
            async for event in self._run(deadline, metrics):
                yield event
            if self._stopped_by == "timeout":
                raise TimeoutError
            if self._stopped_by == "hang_up":
                _count("ChatTurnCancelled")
                for record in self._tracker.settle():
                    await shielded(
                        self._store.add_thread_item(self._thread.id, record, self._caller)
                    )
                raise asyncio.CancelledError("the client went away")
            _count("ChatTurnCompleted")
        except Exception as exc:
            for event in self._failure_events(exc):
                yield event
        finally:
            timer.cancel()
            if unsubscribe is not None:
                unsubscribe()
            metrics.finish(self._result)

    async def _run(
        self, deadline: float, metrics: _TurnMetrics
    ) -> AsyncIterator[ThreadStreamEvent]:
        """Run the agent; stops early (without raising) once :meth:`_stop` was called."""
        async with contextlib.AsyncExitStack() as stack:
            async with asyncio.timeout_at(deadline):  # connecting the MCP servers
                agent = await stack.enter_async_context(self._agents.open(self._caller))
            if self._stopped_by is not None:
                return
            self._received = _ReceivedText(agent.model) if isinstance(agent.model, Model) else None
            if self._received is not None:
                agent = agent.clone(model=self._received)
            self._result = result = Runner.run_streamed(
                agent,
                self._input_items,
                context=self._context,
                max_turns=self._settings.max_turns,
                hooks=self._tracker,
                run_config=RunConfig(
                    workflow_name="Chat turn", tracing_disabled=self._agents.is_offline
                ),
            )
            try:
                # After a stop the run ends its event stream; consuming it to the end (instead of
                # abandoning it) lets the SDKs finish their own helper tasks.
                async for event in stream_agent_response(
                    self._context, self._tracker.watch(result)
                ):
                    if self._stopped_by is not None:
                        continue
                    self._message_ids.rewrite(event)
                    self._answers.observe(event)
                    metrics.observe(event)
                    if (key := _tool_event_key(event)) is not None:
                        self._forwarded.add(key)
                    yield event
            finally:
                if not result.is_complete:
                    result.cancel()

    def _stop(self, reason: Literal["hang_up", "timeout"]) -> None:
        """Stop the run (its event stream then ends); the reason decides how the turn ends."""
        if self._stopped_by is None:
            self._stopped_by = reason
        if self._result is not None and not self._result.is_complete:
            self._result.cancel()

    def _failure_events(self, exc: Exception) -> list[ThreadStreamEvent]:
        """Close what the client saw start, record unfinished calls, then the error itself."""
        message = FAILURE_MESSAGE
        if isinstance(exc, TimeoutError):
            message = TIMEOUT_MESSAGE
            get_logger().warning("agent turn timed out", extra={"thread_id": self._thread.id})
            _count("ChatTurnTimedOut")
        elif isinstance(exc, MaxTurnsExceeded):
            message = MAX_TURNS_MESSAGE
            get_logger().warning("agent turn hit max_turns", extra={"thread_id": self._thread.id})
            _count("ChatTurnMaxTurns")
        else:
            get_logger().exception("agent turn failed", extra={"thread_id": self._thread.id})
            _count("ChatTurnFailed")
        unfinished = self._received.unfinished if self._received is not None else ""
        # Messages before tool events: the items' creation times give their order in the thread.
        answers = self._answers.close(self._tracker.messages, unfinished)
        # Tool events the SDK dropped (queued when the run failed) or never had (failed calls).
        self._tracker.settle()
        return [
            *answers,
            *self._tracker.missed(self._forwarded),
            ErrorEvent(code="custom", message=message, allow_retry=True),
        ]


def _count(name: str) -> None:
    """One CloudWatch (EMF) count; the request middleware flushes it when the request ends."""
    _measure(name, 1, "Count")


def _measure(name: str, value: float, unit: str) -> None:
    get_metrics().add_metric(name=name, unit=unit, value=value)


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
