"""What a widget action does to the caller's tasks, and to the widget it came from.

The logic layer under :mod:`chat_app.actions` (which parses the request and picks the handler):
change the task through :class:`~chat_app.task_repository.TaskRepository` (every statement
scoped by the user, so a foreign task is a missing one), re-render the sender widget from the
tasks' state after the change, store the updated widget item, and store a hidden context item so
the model knows on its next turn what the user did with a click.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from chatkit.types import HiddenContextItem, ThreadMetadata, WidgetItem
from chatkit_backend.caller import Caller
from chatkit_backend.errors import NotFound
from chatkit_backend.store import PostgresStore

from .task_repository import TaskOut, TaskRepository
from .task_widgets import (
    Rendered,
    TaskEvent,
    TaskView,
    is_task_list,
    shown_task_ids,
    task_card_widget,
    task_list_widget,
)

_DONE_WORDS: dict[TaskEvent, str] = {
    "completed": "marked as done",
    "reopened": "marked as not done",
    "deleted": "deleted",
    "added": "added",
    "updated": "updated",
}


@dataclass(frozen=True)
class ActionTarget:
    """Who acts, in which thread, from which widget (all checked to be the caller's)."""

    thread: ThreadMetadata
    sender: WidgetItem
    caller: Caller


@dataclass(frozen=True)
class ActionOutcome:
    """The changed task, what happened to it, and the sender widget item as now stored."""

    task: TaskOut
    event: TaskEvent
    item: WidgetItem

    @property
    def confirmation(self) -> str:
        return f'"{self.task.title}" {_DONE_WORDS[self.event]}.'


class TaskActionService:
    """Task changes made from widgets, for the caller only."""

    def __init__(self, store: PostgresStore, tasks: TaskRepository) -> None:
        self._store = store
        self._tasks = tasks

    def ensure_shown(self, target: ActionTarget, task_id: int) -> None:
        """Refuse a task the sender widget does not show (404: it is not the widget's)."""
        if task_id not in shown_task_ids(target.sender.widget):
            raise NotFound(f"Task {task_id} is not shown in this widget.")

    async def set_completed(
        self, target: ActionTarget, task_id: int, completed: bool
    ) -> ActionOutcome:
        self.ensure_shown(target, task_id)
        task = await self._tasks.set_completed(target.caller.user_id, task_id, completed)
        return await self._record(target, task, "completed" if completed else "reopened")

    async def delete(self, target: ActionTarget, task_id: int) -> ActionOutcome:
        self.ensure_shown(target, task_id)
        task = await self._tasks.delete(target.caller.user_id, task_id)
        return await self._record(target, task, "deleted")

    async def _record(self, target: ActionTarget, task: TaskOut, event: TaskEvent) -> ActionOutcome:
        """Store the re-rendered widget and the note for the model; return what changed."""
        rendered = await self._rerender(target, task, event)
        item = target.sender.model_copy(
            update={"widget": rendered.widget, "copy_text": rendered.copy_text}
        )
        await self._store.save_item(target.thread.id, item, target.caller)
        note = HiddenContextItem(
            id=self._store.generate_item_id("message", target.thread, target.caller),
            thread_id=target.thread.id,
            created_at=datetime.now(),
            content=(
                f'The user {_DONE_WORDS[event]} task #{task.id} "{task.title}" with a button '
                f"of widget {item.id}. The widget now shows: {rendered.copy_text}"
            ),
        )
        await self._store.add_thread_item(target.thread.id, note, target.caller)
        return ActionOutcome(task=task, event=event, item=item)

    async def _rerender(self, target: ActionTarget, task: TaskOut, event: TaskEvent) -> Rendered:
        """The sender widget after the change: a list shows its tasks' current state (a deleted
        one drops out), a card shows its task after ``event``."""
        if not is_task_list(target.sender.widget):
            return task_card_widget(_view(task), event)
        shown = shown_task_ids(target.sender.widget)
        current = await self._tasks.list_by_ids(target.caller.user_id, shown)
        return task_list_widget(_view(row) for row in current)


def _view(task: TaskOut) -> TaskView:
    return TaskView.model_validate(task.model_dump())
