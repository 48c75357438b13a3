"""User-scoped data access to the ``tasks`` table (the todo list behind the agent's task tools).

Every statement carries ``user_id`` in its ``WHERE`` clause (or its ``VALUES``), so a task id of
another user behaves exactly like a missing one: the statement matches no row and the caller gets
:class:`~chatkit_backend.errors.NotFound`. Updates and deletes are single ``... RETURNING``
statements, so there is no read-then-write window in which ownership could change.

This module is shared-layer code: it knows nothing about agents or MCP (the tools that call it
live in the chat function).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from chatkit_backend.db import Database
from chatkit_backend.errors import BadRequest, NotFound
from chatkit_backend.tables import TASKS, utcnow
from pydantic import BaseModel, ConfigDict
from sqlalchemy import ColumnElement, delete, insert, select, update

TITLE_MAX_CHARS = 500
"""The ``tasks.title`` column width."""

DESCRIPTION_MAX_CHARS = 10_000
"""Descriptions are free text, but a tool argument must not be able to store megabytes."""

LIST_LIMIT = 200
"""Most tasks one listing returns (keeps tool output, and so model input, bounded)."""


class TaskOut(BaseModel):
    """A task as tools and APIs return it (the wire shape; ``user_id`` is never exposed)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    description: str | None = None
    completed: bool
    created_at: datetime
    updated_at: datetime


class TaskRepository:
    """Add, list, complete, update and delete one user's tasks; one short transaction per call."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def add(self, user_id: str, title: str, description: str | None = None) -> TaskOut:
        now = utcnow()
        statement = (
            insert(TASKS)
            .values(
                user_id=user_id,
                title=_clean_title(title),
                description=_clean_description(description),
                completed=False,
                created_at=now,
                updated_at=now,
            )
            .returning(*_FIELDS)
        )
        async with self._database.autocommit() as session:
            row = (await session.execute(statement)).one()
        return TaskOut.model_validate(row)

    async def list_by_ids(self, user_id: str, task_ids: Sequence[int]) -> list[TaskOut]:
        """The user's tasks among ``task_ids``, in that order (missing and foreign ids left out)."""
        if not task_ids:
            return []
        statement = select(*_FIELDS).where(
            TASKS.c.user_id == user_id, TASKS.c.id.in_(list(task_ids)[:LIST_LIMIT])
        )
        async with self._database.autocommit() as session:
            rows = {row.id: row for row in (await session.execute(statement)).all()}
        return [TaskOut.model_validate(rows[task_id]) for task_id in task_ids if task_id in rows]

    async def list(
        self, user_id: str, *, include_completed: bool = True, limit: int = LIST_LIMIT
    ) -> list[TaskOut]:
        """The user's tasks in creation order (only the open ones unless ``include_completed``)."""
        statement = select(*_FIELDS).where(TASKS.c.user_id == user_id)
        if not include_completed:
            statement = statement.where(TASKS.c.completed.is_(False))
        statement = statement.order_by(TASKS.c.id).limit(limit)
        async with self._database.autocommit() as session:
            rows = (await session.execute(statement)).all()
        return [TaskOut.model_validate(row) for row in rows]

    async def get(self, user_id: str, task_id: int) -> TaskOut:
        statement = select(*_FIELDS).where(_owned(user_id, task_id))
        async with self._database.autocommit() as session:
            row = (await session.execute(statement)).one_or_none()
        if row is None:
            raise _not_found(task_id)
        return TaskOut.model_validate(row)

    async def complete(self, user_id: str, task_id: int) -> TaskOut:
        """Mark the task done (idempotent: completing a completed task keeps it completed)."""
        return await self.set_completed(user_id, task_id, True)

    async def set_completed(self, user_id: str, task_id: int, completed: bool) -> TaskOut:
        """Mark the task done or open again (idempotent)."""
        return await self._update(user_id, task_id, {"completed": completed})

    async def update(
        self,
        user_id: str,
        task_id: int,
        *,
        title: str | None = None,
        description: str | None = None,
    ) -> TaskOut:
        """Change the title and/or the description (an empty description clears it)."""
        values: dict[str, Any] = {}
        if title is not None:
            values["title"] = _clean_title(title)
        if description is not None:
            values["description"] = _clean_description(description)
        if not values:
            raise BadRequest("Nothing to update: give a new title or description.")
        return await self._update(user_id, task_id, values)

    async def delete(self, user_id: str, task_id: int) -> TaskOut:
        """Delete the task and return what it was."""
        statement = delete(TASKS).where(_owned(user_id, task_id)).returning(*_FIELDS)
        async with self._database.autocommit() as session:
            row = (await session.execute(statement)).one_or_none()
        if row is None:
            raise _not_found(task_id)
        return TaskOut.model_validate(row)

    async def _update(self, user_id: str, task_id: int, values: dict[str, Any]) -> TaskOut:
        statement = (
            update(TASKS)
            .where(_owned(user_id, task_id))
            .values(**values, updated_at=utcnow())
            .returning(*_FIELDS)
        )
        async with self._database.autocommit() as session:
            row = (await session.execute(statement)).one_or_none()
        if row is None:
            raise _not_found(task_id)
        return TaskOut.model_validate(row)


_FIELDS = tuple(TASKS.c[name] for name in TaskOut.model_fields)
"""The columns of the wire shape: ``user_id`` is never selected."""


def _owned(user_id: str, task_id: int) -> ColumnElement[bool]:
    """The one ownership predicate every single-task statement uses."""
    return (TASKS.c.user_id == user_id) & (TASKS.c.id == task_id)


def _not_found(task_id: int) -> NotFound:
    return NotFound(f"Task {task_id} not found.")


def _clean_title(title: str) -> str:
    cleaned = title.strip()
    if not cleaned:
        raise BadRequest("A task needs a non-empty title.")
    if len(cleaned) > TITLE_MAX_CHARS:
        raise BadRequest(f"A task title has at most {TITLE_MAX_CHARS} characters.")
    return cleaned


def _clean_description(description: str | None) -> str | None:
    if description is None:
        return None
    cleaned = description.strip()
    if len(cleaned) > DESCRIPTION_MAX_CHARS:
        raise BadRequest(f"A task description has at most {DESCRIPTION_MAX_CHARS} characters.")
    return cleaned or None
