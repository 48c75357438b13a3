"""The todo widgets: every variant validates as the SDK's strict widget models (nothing dropped),
its task keys say which tasks it shows, its text says what it shows, and hostile titles stay
text; tool results become the right widget (or none); the action registry parses payloads
strictly."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from chat_app.actions import SetCompletedPayload, TaskPayload
from chat_app.task_widgets import (
    COMPLETE_ACTION,
    DELETE_ACTION,
    SET_COMPLETED_ACTION,
    TaskView,
    is_task_list,
    shown_task_ids,
    task_card_widget,
    task_list_widget,
    tasks_changed,
    tool_result_view,
)
from chatkit.types import ClientEffectEvent
from chatkit.widgets import StrictWidgetRoot, WidgetRoot
from pydantic import TypeAdapter, ValidationError

STRICT: TypeAdapter[Any] = TypeAdapter(StrictWidgetRoot)

OPEN = TaskView(id=7, title="buy milk", completed=False)
DONE = TaskView(id=9, title="call mom", description="before 6pm", completed=True)
HOSTILE = TaskView(id=11, title='"}],"type":"Image","src":"x" <script>\n{{ 7*7 }}', completed=False)


def strict(widget: WidgetRoot) -> Any:
    dumped = widget.model_dump(exclude_none=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        validated = STRICT.validate_python(dumped)
    assert validated.model_dump(exclude_unset=True, exclude_none=True) == dumped
    return validated


def actions(component: Any) -> list[tuple[str, Any]]:
    """Every action config in a dumped widget, in order: ``(type, payload)``."""
    found: list[tuple[str, Any]] = []
    if isinstance(component, dict):
        for key in ("onClickAction", "onChangeAction"):
            if key in component:
                found.append((component[key]["type"], component[key].get("payload")))
        for child in component.get("children") or []:
            found.extend(actions(child))
    return found


def test_task_list_validates_and_carries_one_row_of_actions_per_task() -> None:
    rendered = task_list_widget([OPEN, DONE])

    validated = strict(rendered.widget)
    assert validated.type == "Card"
    assert is_task_list(rendered.widget)
    assert shown_task_ids(rendered.widget) == [7, 9]
    assert actions(rendered.widget.model_dump(exclude_none=True)) == [
        (SET_COMPLETED_ACTION, {"task_id": 7, "completed": True}),
        (COMPLETE_ACTION, {"task_id": 7}),
        (DELETE_ACTION, {"task_id": 7}),
        (SET_COMPLETED_ACTION, {"task_id": 9, "completed": False}),
        (DELETE_ACTION, {"task_id": 9}),
    ]
    assert rendered.copy_text == (
        'Task list (1 open · 1 done): #7 "buy milk" (open); #9 "call mom" (done).'
    )


def test_empty_task_list() -> None:
    rendered = task_list_widget([])
    strict(rendered.widget)
    assert shown_task_ids(rendered.widget) == []
    assert rendered.copy_text == "Task list: no tasks."


@pytest.mark.parametrize("event", ["added", "completed", "reopened", "updated", "deleted"])
def test_task_cards_validate_and_a_deleted_one_has_no_buttons(event: Any) -> None:
    task = DONE if event == "completed" else OPEN
    rendered = task_card_widget(task, event)

    strict(rendered.widget)
    assert not is_task_list(rendered.widget)
    assert shown_task_ids(rendered.widget) == [task.id]
    found = actions(rendered.widget.model_dump(exclude_none=True))
    if event == "deleted":
        assert found == []
    elif task.completed:
        assert found == [(DELETE_ACTION, {"task_id": task.id})]
    else:
        assert found == [
            (COMPLETE_ACTION, {"task_id": task.id}),
            (DELETE_ACTION, {"task_id": task.id}),
        ]


def test_titles_are_data_not_template_or_json() -> None:
    rendered = task_list_widget([HOSTILE])
    strict(rendered.widget)
    dumped = rendered.widget.model_dump(exclude_none=True)
    texts = [
        child["value"]
        for row in dumped["children"]
        if row.get("key") == "task-11"
        for col in row["children"]
        if col["type"] == "Col"
        for child in col["children"]
    ]
    assert texts == [HOSTILE.title]
    assert shown_task_ids(rendered.widget) == [11]


def test_tool_results_become_widgets_and_changes_become_effects() -> None:
    listing = tool_result_view("list_tasks", {"tasks": [OPEN.model_dump(), DONE.model_dump()]})
    assert listing is not None
    assert shown_task_ids(listing.rendered.widget) == [7, 9]
    assert listing.changed is None

    added = tool_result_view("add_task", {**OPEN.model_dump(), "created_at": "x"})
    assert added is not None
    assert (added.changed, added.task_ids) == ("added", (7,))
    effect = tasks_changed("deleted", [7])
    assert isinstance(effect, ClientEffectEvent)
    assert effect.model_dump() == {
        "type": "client_effect",
        "name": "tasks.changed",
        "data": {"change": "deleted", "task_ids": [7]},
    }


@pytest.mark.parametrize(
    ("tool", "structured"),
    [
        ("remote_tool", {"id": 1, "title": "x", "completed": False}),
        ("list_tasks", {"tasks": "not a list"}),
        ("list_tasks", {"tasks": [{"id": "seven"}]}),
        ("add_task", ["not", "an", "object"]),
        ("add_task", {"title": "no id"}),
    ],
)
def test_other_tools_and_other_shapes_get_no_widget(tool: str, structured: Any) -> None:
    assert tool_result_view(tool, structured) is None


@pytest.mark.parametrize(
    "payload",
    [
        None,
        {},
        {"task_id": "7"},
        {"task_id": True},
        {"task_id": 0},
        {"task_id": 2**63},
        {"task_id": 1.5},
    ],
)
def test_task_payloads_are_strict(payload: Any) -> None:
    with pytest.raises(ValidationError):
        TaskPayload.model_validate(payload)


def test_payloads_accept_what_the_widgets_send() -> None:
    assert TaskPayload.model_validate({"task_id": 7, "extra": 1}).task_id == 7
    toggle = SetCompletedPayload.model_validate({"task_id": 7, "completed": False})
    assert (toggle.task_id, toggle.completed) == (7, False)
    with pytest.raises(ValidationError):
        SetCompletedPayload.model_validate({"task_id": 7, "completed": "yes"})
