"""What the user sees of a turn's tool calls: one ChatKit workflow item, a task per call.

The workflow is added with the turn's first call, gains a task per later call, each task updated
in place when its call finishes (loading, then complete, its outcome under its arguments), and is
done when the turn ends, so it is stored and shown after a reload (``items.list``). Each event
carries the call (:class:`~chat_app.turn_events.ToolEvent`) for the simple protocols, which
report ``tool_call`` / ``tool_result`` from it. The hidden records the model replays are apart
(:mod:`chat_app.run_tracker`); the model never reads this item (``workflow_to_input``).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from chatkit.agents import AgentContext
from chatkit.types import (
    CustomSummary,
    CustomTask,
    ThreadItemDoneEvent,
    ThreadStreamEvent,
    Workflow,
    WorkflowItem,
    WorkflowTaskAdded,
    WorkflowTaskUpdated,
)
from chatkit_backend.caller import Caller
from chatkit_backend.tool_calls import ToolCallRecord

from .turn_events import ToolTaskAdded, ToolTaskUpdated, complete_tool_events

SUMMARY_MAX_CHARS = 160
"""Longest arguments or outcome line shown in a task (the whole call is in the hidden record)."""


class ToolWorkflow:
    """The workflow item of one turn's tool calls (created with the first call)."""

    def __init__(self, context: AgentContext[Caller], item_id: str | None = None) -> None:
        """``item_id``: the id of a workflow already shown (a failed turn replays its events)."""
        complete_tool_events()
        self._context = context
        self._item_id = item_id
        self.item: WorkflowItem | None = None
        self._tasks: dict[str, int] = {}

    def started(self, record: ToolCallRecord) -> ThreadStreamEvent:
        """The call's task, loading: the workflow's ``added`` for the first call."""
        task = CustomTask(
            title=record.name,
            icon="bolt",
            content=arguments_line(record.arguments),
            status_indicator="loading",
        )
        if self.item is None:
            self.item = WorkflowItem(
                id=self._item_id or self._context.generate_id("workflow"),
                thread_id=self._context.thread.id,
                created_at=datetime.now(),
                workflow=Workflow(type="custom", tasks=[task], expanded=True),
            )
            self._tasks[record.call_id] = 0
            return ToolTaskAdded(item=self.item.model_copy(deep=True), call=record)
        self.item.workflow.tasks.append(task)
        index = self._tasks[record.call_id] = len(self.item.workflow.tasks) - 1
        update = WorkflowTaskAdded(task=task, task_index=index)
        return ToolTaskUpdated(item_id=self.item.id, update=update, call=record)

    def finished(self, record: ToolCallRecord) -> ThreadStreamEvent:
        """The call's task, complete, with its outcome."""
        assert self.item is not None, "a call finishes after it started"
        index = self._tasks[record.call_id]
        task = self.item.workflow.tasks[index].model_copy(
            update={
                "content": f"{arguments_line(record.arguments)}\n{outcome_line(record)}",
                "status_indicator": "complete",
                "icon": "check-circle" if record.error is None else "circle-question",
            }
        )
        self.item.workflow.tasks[index] = task
        update = WorkflowTaskUpdated(task=task, task_index=index)
        return ToolTaskUpdated(item_id=self.item.id, update=update, call=record, finished=True)

    def done(self) -> list[ThreadStreamEvent]:
        """The workflow's ``done`` (stored by the SDK), once the turn's calls are over."""
        if self.item is None:
            return []
        calls = len(self.item.workflow.tasks)
        self.item.workflow.summary = CustomSummary(
            title=f"Used {calls} tool{'s' if calls != 1 else ''}", icon="bolt"
        )
        self.item.workflow.expanded = False
        return [ThreadItemDoneEvent(item=self.item)]


def arguments_line(arguments: dict[str, Any]) -> str:
    """``title: buy milk, task_id: 2``: the arguments in a line (``no arguments`` if none)."""
    if not arguments:
        return "no arguments"
    parts = [f"{name}: {_short(value)}" for name, value in arguments.items()]
    return _cut(", ".join(parts))


def outcome_line(record: ToolCallRecord) -> str:
    """What the call gave: ``→ <its result>``, or ``failed: <why>``."""
    if record.error is not None:
        return _cut(f"failed: {record.error}")
    return _cut(f"→ {_short(record.result())}")


def _short(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=str)


def _cut(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= SUMMARY_MAX_CHARS else text[: SUMMARY_MAX_CHARS - 1] + "…"
