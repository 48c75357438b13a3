"""The project's own MCP server: todo tools over the ``tasks`` table.

Who the user is never comes from tool arguments (a prompt could choose those). It comes from the
MCP request ``_meta`` under :data:`USER_META_KEY`, which the agent's client side fills from the
trusted run context (see :mod:`chat_app.mcp_servers`). A call without it is refused. The server
is reached in-process only; it must not be exposed over a network as is, because there the
``_meta`` would be whatever the caller sends.

Tools declare no output schema: the MCP client would compile a JSON Schema validator for it in
every session, i.e. every turn (a measurable cost per tool call), and the agent reads the
JSON text content anyway.

Tool arguments are validated strictly (unknown arguments such as a ``user_id`` are rejected).
Expected failures (missing or foreign task, empty title) become MCP tool errors with a message
the model can relay; anything unexpected is masked so database details never reach the model.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Annotated, TypeVar

from chatkit_backend.errors import AppError
from fastmcp import Context, FastMCP
from fastmcp.exceptions import ToolError
from pydantic import BaseModel, Field

from chat_app.task_repository import TaskOut, TaskRepository

from .todo_contract import SERVER_NAME, TOOL_NAMES, USER_META_KEY

__all__ = ["SERVER_NAME", "TOOL_NAMES", "USER_META_KEY", "TaskList", "build_todo_server"]

TaskId = Annotated[int, Field(description="The task's id, as shown by list_tasks.")]
Title = Annotated[str, Field(description="A short title, e.g. 'buy milk'.")]
Description = Annotated[str, Field(description="Optional details.")]


class TaskList(BaseModel):
    """What ``list_tasks`` returns: an object, as MCP structured content must be."""

    tasks: list[TaskOut]


def build_todo_server(repository: TaskRepository) -> FastMCP:
    """A FastMCP server whose tools act on the calling user's tasks (build once per process)."""
    mcp = FastMCP(
        SERVER_NAME,
        instructions="Manage the signed-in user's todo list.",
        mask_error_details=True,
    )

    @mcp.tool(annotations={"idempotentHint": False}, output_schema=None)
    async def add_task(
        ctx: Context, title: Title, description: Description | None = None
    ) -> TaskOut:
        """Add a task to the user's todo list and return it (with its id)."""
        user_id = _user_id(ctx)
        return await _call(repository.add(user_id, title, description))

    @mcp.tool(annotations={"readOnlyHint": True}, output_schema=None)
    async def list_tasks(ctx: Context, include_completed: bool = False) -> TaskList:
        """List the user's tasks in creation order; completed ones only when asked for."""
        user_id = _user_id(ctx)
        tasks = await _call(repository.list(user_id, include_completed=include_completed))
        return TaskList(tasks=tasks)

    @mcp.tool(annotations={"idempotentHint": True}, output_schema=None)
    async def complete_task(ctx: Context, task_id: TaskId) -> TaskOut:
        """Mark one of the user's tasks as done."""
        user_id = _user_id(ctx)
        return await _call(repository.complete(user_id, task_id))

    @mcp.tool(annotations={"idempotentHint": True}, output_schema=None)
    async def update_task(
        ctx: Context,
        task_id: TaskId,
        title: Title | None = None,
        description: Description | None = None,
    ) -> TaskOut:
        """Change a task's title and/or description (an empty description clears it)."""
        user_id = _user_id(ctx)
        return await _call(
            repository.update(user_id, task_id, title=title, description=description)
        )

    @mcp.tool(annotations={"destructiveHint": True}, output_schema=None)
    async def delete_task(ctx: Context, task_id: TaskId) -> TaskOut:
        """Delete one of the user's tasks and return what was deleted."""
        user_id = _user_id(ctx)
        return await _call(repository.delete(user_id, task_id))

    return mcp


def _user_id(ctx: Context) -> str:
    """The user from the request ``_meta``; refuse the call when the client did not set one."""
    request = ctx.request_context
    meta = request.meta if request is not None else None
    user_id = meta.get(USER_META_KEY) if meta else None
    if not isinstance(user_id, str) or not user_id:
        raise ToolError(
            "No authenticated user for this tool call: the todo tools only run inside a "
            "signed-in chat session.",
            log_level=logging.WARNING,
        )
    return user_id


T = TypeVar("T")


async def _call(operation: Awaitable[T]) -> T:
    """Await a repository call, turning client-safe application errors into tool errors.

    They are expected outcomes (the model named a missing task), so they are logged at INFO.
    """
    try:
        return await operation
    except AppError as exc:
        raise ToolError(exc.message, log_level=logging.INFO) from exc
