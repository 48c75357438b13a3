"""The registry of widget actions: action type -> handler (parse the payload, call, return).

The todo widgets' buttons send ``tasks.complete`` and ``tasks.delete``, their checkboxes
``tasks.set_completed`` (see :mod:`chat_app.task_widgets`); each works through
``threads.custom_action`` (streamed: the widget updated in place, a ``tasks.changed`` effect, a
short confirmation) and ``threads.sync_custom_action`` (the updated item as JSON). What the
change does is :class:`~chat_app.task_actions.TaskActionService`'s business.

An action body is client input. :meth:`WidgetActions.check` refuses, before any stream starts
and before anything changes, whatever the service must not see: a thread or widget item that is
not the caller's (404, as for a missing one), a thread that is locked or closed (409), an unknown
action type, a payload of the wrong shape, an action without its widget (400), a task the widget
does not show or that no longer exists (404).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from chatkit.actions import Action
from chatkit.types import ThreadCustomActionParams, ThreadMetadata, WidgetItem
from chatkit_backend.caller import Caller
from chatkit_backend.errors import BadRequest, Conflict
from chatkit_backend.store import PostgresStore
from chatkit_backend.web import validation_errors, validation_summary
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError

from .task_actions import ActionOutcome, ActionTarget, TaskActionService
from .task_repository import TaskRepository
from .task_widgets import COMPLETE_ACTION, DELETE_ACTION, SET_COMPLETED_ACTION

TaskId = Annotated[StrictInt, Field(ge=1, le=2**63 - 1)]
"""A task id as a widget sends it: a JSON integer in the id column's range."""


class TaskPayload(BaseModel):
    """``{"task_id": 12}`` (other keys, which a client may add, are ignored)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    task_id: TaskId


class SetCompletedPayload(TaskPayload):
    """``{"task_id": 12, "completed": true}``: the state the checkbox asks for."""

    completed: StrictBool


Run = Callable[[ActionTarget, Any], Awaitable[ActionOutcome]]


@dataclass(frozen=True)
class ActionHandler:
    """One action type: the shape of its payload and what to call with it."""

    payload: type[TaskPayload]
    run: Run

    def parse(self, action: Action[str, Any]) -> TaskPayload:
        try:
            return self.payload.model_validate(action.payload)
        except ValidationError as exc:
            summary = validation_summary(validation_errors(exc.errors()))
            raise BadRequest(f"Action {action.type!r}: invalid payload: {summary}") from exc


class WidgetActions:
    """The actions this server knows, and the checks every one of them passes first."""

    def __init__(self, store: PostgresStore, tasks: TaskRepository) -> None:
        self._store = store
        self._tasks = tasks
        self._service = TaskActionService(store, tasks)
        self._handlers: dict[str, ActionHandler] = {
            COMPLETE_ACTION: ActionHandler(TaskPayload, self._complete),
            DELETE_ACTION: ActionHandler(TaskPayload, self._delete),
            SET_COMPLETED_ACTION: ActionHandler(SetCompletedPayload, self._set_completed),
        }

    @property
    def types(self) -> list[str]:
        return sorted(self._handlers)

    async def check(self, params: ThreadCustomActionParams, caller: Caller) -> None:
        """Refuse (see the module docstring) before anything is streamed or written."""
        thread = await self._store.load_thread(params.thread_id, caller)
        if thread.status.type != "active":
            raise Conflict(f"This conversation is {thread.status.type}: it takes no actions.")
        payload = self._handler(params.action).parse(params.action)
        if params.item_id is None:
            raise BadRequest(f"Action {params.action.type!r} needs the widget item it came from.")
        sender = await self._store.load_item(thread.id, params.item_id, caller)
        if not isinstance(sender, WidgetItem):
            raise BadRequest(f"Item {params.item_id} is not a widget.")
        self._service.ensure_shown(ActionTarget(thread, sender, caller), payload.task_id)
        await self._tasks.get(caller.user_id, payload.task_id)

    async def run(
        self,
        thread: ThreadMetadata,
        action: Action[str, Any],
        sender: WidgetItem | None,
        caller: Caller,
    ) -> ActionOutcome:
        """Parse and run one action (after :meth:`check`, which the HTTP edge always calls)."""
        handler = self._handler(action)
        payload = handler.parse(action)
        if sender is None:
            raise BadRequest(f"Action {action.type!r} needs the widget item it came from.")
        return await handler.run(ActionTarget(thread, sender, caller), payload)

    def _handler(self, action: Action[str, Any]) -> ActionHandler:
        handler = self._handlers.get(action.type)
        if handler is None:
            raise BadRequest(
                f"Unknown action {action.type!r}; this server knows {', '.join(self.types)}."
            )
        return handler

    # --- handlers: payload in, service call, outcome out -----------------------------------------

    async def _complete(self, target: ActionTarget, payload: TaskPayload) -> ActionOutcome:
        return await self._service.set_completed(target, payload.task_id, True)

    async def _delete(self, target: ActionTarget, payload: TaskPayload) -> ActionOutcome:
        return await self._service.delete(target, payload.task_id)

    async def _set_completed(
        self, target: ActionTarget, payload: SetCompletedPayload
    ) -> ActionOutcome:
        return await self._service.set_completed(target, payload.task_id, payload.completed)
