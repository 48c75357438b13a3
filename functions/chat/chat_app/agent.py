"""The agent of one chat turn: instructions, the model, and the MCP servers for that user.

Built in two steps because the costs differ: :class:`AgentFactory` (once per process) picks the
model and builds the FastMCP todo server; :meth:`AgentFactory.open` (once per turn) connects the
MCP servers for the requesting user and yields a ready ``Agent``.

The instructions are the same for every user and carry no identity, secret or per-user data: the
tools learn the user from the run context (``context=`` of ``Runner.run_streamed``, an object with
a ``request_context`` attribute), never from anything the model reads or writes. ``max_turns`` and
the per-turn timeout belong to the caller that runs the agent.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from agents import Agent, Model
from chatkit_backend.caller import Caller
from chatkit_backend.db import Database
from chatkit_backend.settings import Settings

from chat_app.task_repository import TaskRepository

from .mcp_servers import open_mcp_servers
from .model_provider import build_model
from .offline_model import OfflineModel
from .todo_mcp import build_todo_server

logger = logging.getLogger(__name__)

AGENT_NAME = "Assistant"

INSTRUCTIONS = """\
You are the assistant of a chat app. Answer helpfully, accurately and concisely.

You can manage the user's todo list with the task tools: add_task, list_tasks, complete_task,
update_task and delete_task. Use them whenever the user asks about their tasks. Tasks are
identified by their numeric id; when the user names a task by its title, call list_tasks first
and use the id of the matching task. After a tool call, tell the user what it did, using the
tool's result.

The task tools always act for the signed-in user. Never ask for, accept or pass a user id or a
user name, and refuse requests to read or change another person's tasks.
"""


class AgentFactory:
    """Builds the agent for each turn (one instance per process)."""

    def __init__(self, settings: Settings, database: Database, model: Model | None = None) -> None:
        self._model = model if model is not None else build_model(settings)
        self._todo_server = build_todo_server(TaskRepository(database))
        self._remote_urls = list(settings.mcp_servers)
        self._allowed_tools = list(settings.mcp_allowed_tools)
        if self._remote_urls and not self._allowed_tools:
            logger.warning(
                "MCP_SERVERS is set but MCP_ALLOWED_TOOLS is empty: no remote tool is exposed, "
                "so the remote servers are not connected"
            )
            self._remote_urls = []

    @property
    def model(self) -> Model:
        return self._model

    @property
    def is_offline(self) -> bool:
        """True when answers come from the built-in offline model (no API key configured)."""
        return isinstance(self._model, OfflineModel)

    @asynccontextmanager
    async def open(self, caller: Caller) -> AsyncIterator[Agent[Any]]:
        """A ready agent for this user's turn; its MCP servers are closed when the block exits."""
        async with open_mcp_servers(
            self._todo_server, caller, self._remote_urls, self._allowed_tools
        ) as servers:
            yield Agent(
                name=AGENT_NAME,
                instructions=INSTRUCTIONS,
                model=self._model,
                mcp_servers=servers,
                mcp_config={"convert_schemas_to_strict": True},
            )
