"""The todo widgets: what the task tools' results look like in a ChatKit thread.

Defined in one place: the two ``.widget`` templates next to this module (``widgets/``, the
SDK's :class:`~chatkit.widgets.WidgetTemplate` format, the non-deprecated way to build widgets
in openai-chatkit 1.6) and the builders below, which are the only code that fills them.

* :func:`task_list_widget`: what ``list_tasks`` answers with; one row per task with a checkbox
  (``tasks.set_completed``, a sync action), a complete button (``tasks.complete``) and a delete
  button (``tasks.delete``);
* :func:`task_card_widget`: what ``add_task`` / ``complete_task`` / ``update_task`` /
  ``delete_task`` answer with, one task and its buttons (none once deleted).

Every task-bearing component is keyed ``task-<id>``, so :func:`shown_task_ids` can tell, from a
stored widget alone, which tasks it shows: an action may only act on those.
The ``copy_text`` of each widget says in words what it shows; it is what the model reads on
later turns and what the REST view lists.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

from chatkit.types import ClientEffectEvent
from chatkit.widgets import WidgetRoot, WidgetTemplate
from pydantic import BaseModel, ValidationError

WIDGETS_DIR = Path(__file__).with_name("widgets")


TEMPLATES = ("task_list", "task_card")


@cache
def template(name: str) -> WidgetTemplate:
    """``widgets/<name>.widget``, loaded at its first use (once per process, not at init)."""
    return WidgetTemplate.from_file(str(WIDGETS_DIR / f"{name}.widget"))


TASK_LIST_KEY = "task-list"
"""The key of the task list's root (a task card's root is keyed by its task)."""

_TASK_KEY = re.compile(r"task-(\d+)")

COMPLETE_ACTION = "tasks.complete"
DELETE_ACTION = "tasks.delete"
SET_COMPLETED_ACTION = "tasks.set_completed"

TaskEvent = Literal["added", "completed", "reopened", "updated", "deleted"]
"""What happened to the task a card shows."""

_CARD_LOOK: dict[TaskEvent, tuple[str, str, str]] = {
    # event: (heading, status badge, badge colour)
    "added": ("Task added", "Open", "info"),
    "completed": ("Task completed", "Done", "success"),
    "reopened": ("Task reopened", "Open", "info"),
    "updated": ("Task updated", "Open", "info"),
    "deleted": ("Task deleted", "Deleted", "danger"),
}

TOOL_EVENTS: dict[str, TaskEvent] = {
    "add_task": "added",
    "complete_task": "completed",
    "update_task": "updated",
    "delete_task": "deleted",
}
"""The task tools that change a task, and what their card says happened."""


class TaskView(BaseModel):
    """The fields of a task a widget shows (a tool result or a repository row has them all)."""

    id: int
    title: str
    description: str | None = None
    completed: bool


@dataclass(frozen=True)
class Rendered:
    """A widget and the words for it (``WidgetItem.copy_text``)."""

    widget: WidgetRoot
    copy_text: str


def task_list_widget(tasks: Iterable[TaskView]) -> Rendered:
    """The task list: every task with its done state and buttons."""
    tasks = list(tasks)
    open_count = sum(not task.completed for task in tasks)
    summary = f"{open_count} open" + (
        f" · {len(tasks) - open_count} done" if open_count < len(tasks) else ""
    )
    tasks_shown = [task.model_dump() for task in tasks]
    widget = template("task_list").build({"summary": summary, "tasks": tasks_shown})
    if not tasks:
        return Rendered(widget, "Task list: no tasks.")
    lines = "; ".join(_task_words(task) for task in tasks)
    return Rendered(widget, f"Task list ({summary}): {lines}.")


def task_card_widget(task: TaskView, event: TaskEvent) -> Rendered:
    """One task after ``event`` (a deleted task is shown struck through, without buttons)."""
    heading, status, colour = _CARD_LOOK[event]
    widget = template("task_card").build(
        {
            "task": task.model_dump(),
            "heading": heading,
            "status": status,
            "status_color": colour,
            "deleted": event == "deleted",
        }
    )
    return Rendered(widget, f"{heading}: {_task_words(task)}.")


def is_task_list(widget: WidgetRoot) -> bool:
    return widget.key == TASK_LIST_KEY


def shown_task_ids(widget: WidgetRoot) -> list[int]:
    """The ids of the tasks a stored todo widget shows, in order (none for other widgets)."""
    return [int(match[1]) for match in _task_keys(widget)]


def _task_keys(component: Any) -> Iterator[re.Match[str]]:
    key = getattr(component, "key", None)
    if isinstance(key, str) and (match := _TASK_KEY.fullmatch(key)):
        yield match
    children = getattr(component, "children", None)
    if isinstance(children, list):
        for child in children:
            yield from _task_keys(child)
    elif children is not None:
        yield from _task_keys(children)


def _task_words(task: TaskView) -> str:
    state = "done" if task.completed else "open"
    return f'#{task.id} "{task.title}" ({state})'


# --- tool results -------------------------------------------------------------------------------


TASKS_CHANGED_EFFECT = "tasks.changed"
"""The client effect sent after any task change (by a tool or an action)."""


@dataclass(frozen=True)
class ToolResultView:
    """What the client is shown of one task tool's result: a widget, and the tasks it changed."""

    rendered: Rendered
    changed: TaskEvent | None = None
    task_ids: tuple[int, ...] = ()


def tool_result_view(tool_name: str, structured: Any) -> ToolResultView | None:
    """The widget of a todo tool's structured result (None for other tools or other shapes)."""
    try:
        return _tool_result_view(tool_name, structured)
    except ValidationError:
        return None


def _tool_result_view(tool_name: str, structured: Any) -> ToolResultView | None:
    if not isinstance(structured, dict):
        return None
    if tool_name == "list_tasks":
        tasks = structured.get("tasks")
        if not isinstance(tasks, list):
            return None
        return ToolResultView(task_list_widget(TaskView.model_validate(task) for task in tasks))
    event = TOOL_EVENTS.get(tool_name)
    if event is None:
        return None
    task = TaskView.model_validate(structured)
    return ToolResultView(task_card_widget(task, event), changed=event, task_ids=(task.id,))


def tasks_changed(change: TaskEvent, task_ids: Iterable[int]) -> ClientEffectEvent:
    """``client_effect`` ``tasks.changed``: the host page may refresh its own views of tasks."""
    return ClientEffectEvent(
        name=TASKS_CHANGED_EFFECT, data={"change": change, "task_ids": list(task_ids)}
    )
