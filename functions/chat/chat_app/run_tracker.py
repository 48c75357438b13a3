"""What one agent turn did: the model's finished messages and its tool calls, as shown.

Tool calls stream live as the tasks of one workflow item per turn
(:class:`~chat_app.tool_workflow.ToolWorkflow`, whose events also carry the call for the simple
protocols), done and stored when the turn ends; each finished call is stored as a hidden record
(:class:`~chatkit_backend.tool_calls.ToolCallRecord`) that the next turn's input replays. On a
failure or hang-up, :meth:`RunTracker.settle` gives the record of every call that ran.

A todo tool's result is also shown as a widget (:mod:`chat_app.task_widgets`, built from the
full structured result the todo server keeps on the output item), followed, when the tool
changed a task, by a ``tasks.changed`` client effect. Client tools (``CLIENT_TOOLS``) are not
tracked here: the SDK ends the turn with their ``ClientToolCallItem``, which is their one record.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any, cast

from agents import (
    ItemHelpers,
    ModelResponse,
    RunContextWrapper,
    RunHooks,
    RunItem,
    RunItemStreamEvent,
    RunResultStreaming,
    StreamEvent,
    ToolCallItem,
    ToolCallOutputItem,
)
from agents.tool_context import ToolContext
from chatkit.agents import AgentContext
from chatkit.types import (
    HiddenContextItem,
    ThreadItemDoneEvent,
    ThreadStreamEvent,
)
from chatkit_backend.caller import Caller
from chatkit_backend.tool_calls import ToolCallRecord
from openai.types.responses import ResponseOutputMessage, ResponseOutputText
from pydantic_core import to_jsonable_python

from .mcp_servers import STRUCTURED_RESULT_KEY
from .task_widgets import tasks_changed, tool_result_view
from .tool_workflow import ToolWorkflow
from .turn_events import ToolCallShown

TOOL_FAILED = "The tool call did not finish."


class RunTracker(RunHooks[Any]):
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

    def __init__(
        self, context: AgentContext[Caller], client_tools: frozenset[str] = frozenset()
    ) -> None:
        self.context = context
        self.client_tools = client_tools
        self.messages: list[str] = []
        self.calls: dict[str, ToolCallRecord] = {}
        self.finished: set[str] = set()
        self.items: dict[str, HiddenContextItem] = {}
        self.workflow = ToolWorkflow(context)

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
        if isinstance(context, ToolContext) and context.tool_name not in self.client_tools:
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
            if (
                isinstance(call_id, str)
                and isinstance(name, str)  # else: a hosted tool
                and name not in self.client_tools
            ):
                record = self._start(call_id, name, _raw(item.raw_item, "arguments"))
                await self.context.stream(self.workflow.started(record))
        elif isinstance(item, ToolCallOutputItem):
            call_id = _raw(item.raw_item, "call_id")
            if call_id in self.calls:
                self._finish(call_id, _raw(item.raw_item, "output"))
                for event in self._finished_events(call_id):
                    await self.context.stream(event)
                await self._show_result(self.calls[call_id], item.custom_data)

    async def _show_result(
        self, record: ToolCallRecord, custom_data: dict[str, Any] | None
    ) -> None:
        """The widget of a todo tool's result and, after a change, the ``tasks.changed`` effect."""
        if record.error or not custom_data:
            return
        view = tool_result_view(record.name, custom_data.get(STRUCTURED_RESULT_KEY))
        if view is None:
            return
        await self.context.stream_widget(view.rendered.widget, view.rendered.copy_text)
        if view.changed is not None:
            await self.context.stream(tasks_changed(view.changed, view.task_ids))

    # --- failure and cancellation ---------------------------------------------------------------

    def settle(self) -> list[HiddenContextItem]:
        """The record of every call that ran; calls that never finished are marked failed."""
        for call_id in self.calls.keys() - self.finished:
            self.calls[call_id] = self.calls[call_id].model_copy(update={"error": TOOL_FAILED})
            self.finished.add(call_id)
        return [self._item(call_id) for call_id in self.calls]

    def missed(self, delivered: set[str]) -> list[ThreadStreamEvent]:
        """After :meth:`settle`: the tool events whose key is not in ``delivered``, then the
        workflow's ``done`` with every call settled (the client may have seen none of it)."""
        shown = self.workflow.item
        replay = ToolWorkflow(self.context, shown.id if shown is not None else None)
        events: list[ThreadStreamEvent] = []
        for call_id, record in self.calls.items():
            events.append(replay.started(record))
            events.extend(self._finished_events(call_id, replay))
        missing = [event for event in events if tool_event_key(event) not in delivered]
        return [*missing, *replay.done()]

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

    def _finished_events(
        self, call_id: str, workflow: ToolWorkflow | None = None
    ) -> list[ThreadStreamEvent]:
        record = self.calls[call_id]
        return [
            (workflow or self.workflow).finished(record),
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


class _WatchedRun:
    """``result.stream_events()`` with each run item shown to the tracker before it passes."""

    def __init__(self, result: RunResultStreaming, tracker: RunTracker) -> None:
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


def tool_event_key(event: ThreadStreamEvent) -> str | None:
    """Identifies the events the tool tracker emits (to tell which ones came through)."""
    if isinstance(event, ToolCallShown):
        return event.key
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
