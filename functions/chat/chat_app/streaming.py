"""One agent turn behind ``ChatServer.respond()``: run, show tool activity, fail and stop cleanly.

The turn runs inline in ``respond()`` (the SDK's run task is the only task under it) and never
has a task cancelled under it: a hang-up or the turn's deadline stops the run
(``RunResultStreaming.cancel()``), whose event stream then ends, so the SDK helpers finish their
own tasks. Tool activity streams as one workflow item per turn (a task per call, done when
the turn ends) and each finished call is stored as a hidden record the next turn's input
replays. A failed turn completes what the client saw
start (plus the words received before a cut) and ends with an ``error`` event; a hang-up
raises ``CancelledError`` so the SDK stores the partial answer. No database access per delta.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol, cast

from agents import (
    Model,
    ModelResponse,
    RunConfig,
    Runner,
    RunResultStreaming,
)
from agents.exceptions import (
    InputGuardrailTripwireTriggered,
    MaxTurnsExceeded,
    OutputGuardrailTripwireTriggered,
)
from agents.items import TResponseInputItem, TResponseStreamEvent
from agents.retry import ModelRetryAdvice, ModelRetryAdviceRequest
from chatkit.agents import AgentContext, stream_agent_response
from chatkit.types import (
    AssistantMessageContent,
    AssistantMessageContentPartAdded,
    AssistantMessageContentPartDone,
    AssistantMessageContentPartTextDelta,
    AssistantMessageItem,
    ClientToolCallItem,
    ErrorEvent,
    ThreadItemAddedEvent,
    ThreadItemDoneEvent,
    ThreadItemRemovedEvent,
    ThreadItemUpdatedEvent,
    ThreadMetadata,
    ThreadStreamEvent,
)
from chatkit_backend.caller import Caller
from chatkit_backend.held_write import release_held_write
from chatkit_backend.observability import get_logger, get_metrics
from chatkit_backend.store import PostgresStore
from openai.types.responses import (
    EasyInputMessageParam,
    ResponseCompletedEvent,
    ResponseOutputItemDoneEvent,
    ResponseTextDeltaEvent,
)

from .cancellation import CURRENT_HANG_UP, shielded
from .inference import TurnOptions
from .model_provider import ModelProvider
from .run_tracker import RunTracker, tool_event_key
from .turn_events import FAILURE_MESSAGE, MAX_TURNS_MESSAGE, TIMEOUT_MESSAGE, ToolTaskAdded
from .turn_limits import add_usage


class AgentSource(Protocol):
    """What a turn needs from :class:`chat_app.agent.AgentFactory`."""

    @property
    def is_offline(self) -> bool:
        """True for the built-in offline model: then there is nowhere to export traces to."""

    @property
    def client_tool_names(self) -> frozenset[str]:
        """The tools the client runs (``CLIENT_TOOLS``), which the run tracker leaves alone."""

    @property
    def provider(self) -> ModelProvider | None:
        """The model's provider, for titles and dictation (None: offline, or a model handed in)."""

    def open(self, caller: Caller, options: TurnOptions | None = None) -> Any:
        """An async context manager yielding the ``Agent`` of this user's turn (with the model
        and tool the user picked, when given)."""


@dataclass
class TurnSettings:
    max_turns: int
    timeout_seconds: float


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
    """Gives every assistant message (and client tool call) of the turn a fresh store id.

    ``stream_agent_response`` reuses the model's output item id as the thread item id. The
    Responses API makes those unique, but Chat Completions models (any ``OPENAI_BASE_URL``
    server) give every message the SDK's placeholder ``__fake_id__``, and test models reuse ids
    too: the second answer in a thread would then be the "same" item, which the store's
    idempotent add ignores and the client merges. Each ``added`` (or a ``done`` without one)
    starts a new message; its ``updated`` and ``done`` events follow it. The SDK names a client
    tool call's item after the model's function call item as well, so it gets a fresh id too.
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
            case ThreadItemDoneEvent(item=ClientToolCallItem() as item):
                item.id = self._context.generate_id("tool_call")


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
            add_usage(usage.input_tokens + usage.output_tokens)

    def _elapsed_ms(self) -> float:
        return (time.perf_counter() - self._started) * 1000


YIELD_EVERY_EVENTS = 4
"""How often a model stream hands the loop over (see :meth:`_ReceivedText.stream_response`)."""


class _ReceivedText(Model):
    """The turn's model, noting the text of the message it is streaming until that is done, and
    putting the thread's history in front of what the run asks.

    When a stream breaks, the Agents SDK drops the events it had queued for the consumer: words
    the model sent just before the cut would be lost. This is what arrived, from the model's
    side, so a failed turn can still send and store it.

    The history is the same prefix at every model call of the run, which the run never changes;
    given to the run as its input, it would be copied and walked again at the run's start and
    at each model call. The run gets the turn's own newest item; every request here gets the
    history before what the run sends.
    """

    def __init__(self, model: Model, history: list[TResponseInputItem]) -> None:
        self._model = model
        self._history = history
        self.unfinished = ""

    def _prefixed(self, run_input: str | list[TResponseInputItem]) -> Any:
        """What the run sends, with the history before it."""
        if not self._history:
            return run_input
        if isinstance(run_input, str):
            return [*self._history, EasyInputMessageParam(role="user", content=run_input)]
        return [*self._history, *run_input]

    async def get_response(
        self, system_instructions: str | None, input: Any, *args: Any, **kwargs: Any
    ) -> ModelResponse:
        return await self._model.get_response(
            system_instructions, self._prefixed(input), *args, **kwargs
        )

    async def stream_response(
        self, system_instructions: str | None, input: Any, *args: Any, **kwargs: Any
    ) -> AsyncIterator[TResponseStreamEvent]:
        self.unfinished = ""
        events = 0
        # The turn's held message insert runs while the model is called, not before it.
        release_held_write()
        request = self._prefixed(input)
        async for event in self._model.stream_response(
            system_instructions, request, *args, **kwargs
        ):
            if isinstance(event, ResponseTextDeltaEvent):
                self.unfinished += event.delta
            elif isinstance(event, ResponseOutputItemDoneEvent | ResponseCompletedEvent):
                self.unfinished = ""
            yield event
            # A burst (a whole answer in one socket read) is parsed without ever awaiting
            # anything that is not ready, so the run would queue all of it before the client
            # is sent its first word: hand the loop to the consumer (the SSE write) every few
            # events (each hand-over costs a loop turn, so not every one).
            if events % YIELD_EVERY_EVENTS == 0:
                await asyncio.sleep(0)
            events += 1

    def get_retry_advice(self, request: ModelRetryAdviceRequest) -> ModelRetryAdvice | None:
        return self._model.get_retry_advice(request)

    async def close(self) -> None:
        await self._model.close()


class _FailureHeld:
    """The run's event stream, ending normally when the run fails; the failure is raised later.

    ``stream_agent_response`` merges the run's events with the SDK's own event queue, one task
    waiting on each; when the run's stream raises, the merge is abandoned with the queue's task
    still pending, destroyed later ("Task was destroyed but it is pending!"). A stream that ends
    instead lets the merge cancel that task and drain the queue; :meth:`raise_failure` then
    raises what the run raised. Guardrail trips pass through: the SDK handles those itself.
    """

    def __init__(self, run: RunResultStreaming) -> None:
        self._run = run
        self._failure: Exception | None = None

    def stand_in(self) -> RunResultStreaming:
        """What ``stream_agent_response`` gets (it only calls ``stream_events()``)."""
        return cast(RunResultStreaming, self)

    async def stream_events(self) -> AsyncIterator[Any]:
        try:
            async for event in self._run.stream_events():
                yield event
        except (InputGuardrailTripwireTriggered, OutputGuardrailTripwireTriggered):
            raise
        except Exception as exc:
            self._failure = exc

    def raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure


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
        options: TurnOptions | None = None,
    ) -> None:
        self._agents = agents
        self._store = store
        self._thread = thread
        self._caller = caller
        self._input_items = input_items
        self._settings = settings
        self._options = options
        self._context = AgentContext[Caller](thread=thread, store=store, request_context=caller)
        self._tracker = RunTracker(self._context, agents.client_tool_names)
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
                agent = await stack.enter_async_context(
                    self._agents.open(self._caller, self._options)
                )
            if self._stopped_by is not None:
                return
            run_input = self._input_items
            model: Model | None = None
            if isinstance(agent.model, Model) and run_input:
                *history, newest = run_input
                # The run's model, not the agent's: the agent may serve other turns.
                model = self._received = _ReceivedText(agent.model, history)
                run_input = [newest]
            else:
                release_held_write()  # no wrapper to start it at the model call
            self._result = result = Runner.run_streamed(
                agent,
                run_input,
                context=self._context,
                max_turns=self._settings.max_turns,
                hooks=self._tracker,
                run_config=RunConfig(
                    model=model,
                    workflow_name="Chat turn",
                    tracing_disabled=self._agents.is_offline,
                ),
            )
            held = _FailureHeld(self._tracker.watch(result))
            try:
                # After a stop the run ends its event stream; consuming it to the end (instead of
                # abandoning it) lets the SDKs finish their own helper tasks.
                async for event in stream_agent_response(self._context, held.stand_in()):
                    if self._stopped_by is not None:
                        continue
                    self._message_ids.rewrite(event)
                    self._answers.observe(event)
                    metrics.observe(event)
                    if (key := tool_event_key(event)) is not None:
                        self._forwarded.add(key)
                    if isinstance(event, ToolTaskAdded):
                        # The SDK adopts an added workflow and ends it at the next widget or
                        # message; the tool workflow stays open for the whole turn instead.
                        self._context.workflow_item = None
                    yield event
                held.raise_failure()
                if self._stopped_by is None:
                    for event in self._tracker.workflow.done():
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
