"""The agent of one chat turn: instructions, the model, and the MCP servers for that user.

Built in two steps because the costs differ: :class:`AgentFactory` (once per process) picks the
model and, on first use, builds the FastMCP todo server; :meth:`AgentFactory.open` (once per
turn) connects the MCP servers for the requesting user and yields a ready ``Agent``. Requests
without a turn (``threads.list``, ``items.list``: what a ChatKit client sends first) never load
FastMCP; with SnapStart, :meth:`AgentFactory.warm_up` loads it before the snapshot.

The instructions are the same for every user and carry no identity, secret or per-user data: the
tools learn the user from the run context (``context=`` of ``Runner.run_streamed``, an object with
a ``request_context`` attribute), never from anything the model reads or writes. ``max_turns`` and
the per-turn timeout belong to the caller that runs the agent.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from agents import Agent, FunctionTool, Model, ModelSettings, RunContextWrapper, StopAtTools
from agents.mcp import MCPServer
from chatkit_backend.caller import Caller
from chatkit_backend.db import Database
from chatkit_backend.settings import Settings

from chat_app.task_repository import TaskRepository

from .client_tools import client_function_tools
from .inference import TurnOptions
from .mcp_servers import InProcessMCPServer, exposed_tools, function_tools, open_mcp_servers
from .model_provider import ModelProvider, choose_model, configure_tracing, model_settings
from .offline_model import OfflineModel
from .task_widgets import TEMPLATES, template
from .turn_events import complete_tool_events

if TYPE_CHECKING:
    from agents.tool import Tool

logger = logging.getLogger(__name__)

AGENT_NAME = "Assistant"

AGENTS_KEPT = 64
"""Agents :meth:`AgentFactory._agent` keeps for reuse (per user and picks), the least recently
used dropped first."""

WARM_UP_USER = "snapstart-warm-up"
"""The run-context user of :meth:`AgentFactory.warm_up` (it lists tools, it never calls one)."""

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
        self._settings = settings
        self._provider: ModelProvider | None = None
        configure_tracing(settings)
        if model is None:
            choice = choose_model(settings)
            model, self._provider = choice.model, choice.provider
        self._model = model
        self._picked: dict[str, Model] = {}
        self._built: OrderedDict[tuple[str | None, str | None, str | None], Agent[Any]] = (
            OrderedDict()
        )
        self._tasks = TaskRepository(database)
        self._todo: InProcessMCPServer | None = None
        self._remote = list(settings.mcp_servers)
        self._allowed_tools = list(settings.mcp_allowed_tools)
        self._client_tools: list[FunctionTool] = client_function_tools(settings.client_tools)
        for server in self._remote:
            if not exposed_tools(server, self._allowed_tools):
                logger.warning(
                    "MCP server %s has no allowed tools (its allowed_tools, else "
                    "MCP_ALLOWED_TOOLS): it is not connected",
                    server.label,
                )

    @property
    def model(self) -> Model:
        return self._model

    @property
    def client_tool_names(self) -> frozenset[str]:
        """The ``CLIENT_TOOLS`` names: calls to these end the turn and wait for the client."""
        return frozenset(tool.name for tool in self._client_tools)

    @property
    def provider(self) -> ModelProvider | None:
        """The provider of the configured model (None: offline, or a model handed in)."""
        return self._provider

    @property
    def is_offline(self) -> bool:
        """True when answers come from the built-in offline model (no API key configured)."""
        return isinstance(self._model, OfflineModel)

    @property
    def todo(self) -> InProcessMCPServer:
        """The todo MCP server, built on first use (the first turn, or the SnapStart warm-up):
        FastMCP's server stack is a noticeable import that requests without a turn skip."""
        if self._todo is None:
            from .todo_mcp import build_todo_server

            self._todo = InProcessMCPServer(
                build_todo_server(self._tasks),
                output_max_chars=self._settings.tool_output_max_chars,
            )
        return self._todo

    async def warm_up(self) -> None:
        """Run what a first turn runs before it reaches the model or the database.

        Connects the todo server in-process, lists its tools (cached for the process) and
        converts them to the strict function-tool schemas the model is offered; builds the tool
        workflow's events and loads the widget templates. Called before a SnapStart snapshot so
        a restored sandbox's first turn does not pay for it. Remote MCP servers are not
        contacted: their credentials and sessions are per turn.
        """
        complete_tool_events()
        for name in TEMPLATES:
            template(name)
        async with open_mcp_servers(self.todo, Caller(user_id=WARM_UP_USER)) as servers:
            agent = self._agent(servers, None, TurnOptions())
            await agent.get_all_tools(RunContextWrapper(context=None))

    async def close_connections(self) -> None:
        """Close the model client's pooled connections and start over with a fresh client.

        Called before a SnapStart snapshot: a keep-alive connection frozen into it would be
        reused, long dead, by every restored sandbox. An injected model is left alone (its
        owner manages it); the per-turn MCP sessions are closed at the end of every turn anyway.
        """
        if self._provider is None:
            return
        await self._provider.client.close()
        choice = choose_model(self._settings)
        self._model, self._provider = choice.model, choice.provider
        self._picked.clear()
        self._built.clear()

    @asynccontextmanager
    async def open(
        self, caller: Caller, options: TurnOptions | None = None
    ) -> AsyncIterator[Agent[Any]]:
        """A ready agent for this user's turn; its MCP servers are closed when the block exits."""
        async with open_mcp_servers(
            self.todo,
            caller,
            self._remote,
            self._allowed_tools,
            self._settings.tool_output_max_chars,
        ) as servers:
            yield self._agent(servers, caller, options or TurnOptions())

    def _model_named(self, name: str | None) -> Model:
        """The configured model, or the picked one on the same provider (built once per name;
        the offline model and a model handed in answer whatever was picked)."""
        if name is None or name == self._settings.model_name or self._provider is None:
            return self._model
        if name not in self._picked:
            self._picked[name] = self._provider.model(name)
        return self._picked[name]

    def _agent(
        self, servers: list[MCPServer], caller: Caller | None, options: TurnOptions
    ) -> Agent[Any]:
        """The turn's agent, reused for the same user and picks while its servers are only the
        per-process todo server (remote servers are per turn): building and validating an
        ``Agent`` costs more than a lookup, and a run never changes its agent."""
        if any(server is not self._todo for server in servers):
            return self._build_agent(servers, caller, options)
        key = (options.model, options.tool_choice, caller.user_id if caller else None)
        agent = self._built.get(key)
        if agent is None:
            agent = self._build_agent(servers, caller, options)
            self._built[key] = agent
            if len(self._built) > AGENTS_KEPT:
                self._built.popitem(last=False)
        self._built.move_to_end(key)
        return agent

    def _build_agent(
        self, servers: list[MCPServer], caller: Caller | None, options: TurnOptions
    ) -> Agent[Any]:
        """A turn's agent; a call to a client tool stops the run (the client answers it).

        A tool picked in the composer is forced on the turn's first model call (the SDK's
        ``reset_tool_choice`` lets the model answer freely after it)."""
        model = self._model_named(options.model)
        settings = model_settings(self._settings, model, caller)
        if options.tool_choice is not None:
            settings = settings.resolve(ModelSettings(tool_choice=options.tool_choice))
        return _TurnAgent(
            name=AGENT_NAME,
            instructions=INSTRUCTIONS,
            model=model,
            model_settings=settings,
            mcp_servers=servers,
            mcp_config={"convert_schemas_to_strict": True},
            tools=list(self._client_tools),
            tool_use_behavior=(
                StopAtTools(stop_at_tool_names=sorted(self.client_tool_names))
                if self._client_tools
                else "run_llm_again"
            ),
        )


class _TurnAgent(Agent[Any]):
    """An ``Agent`` whose in-process MCP tools come from their per-process conversion: the SDK
    converts every server's listing to function tools again at each model call of a run."""

    async def get_mcp_tools(self, run_context: RunContextWrapper[Any]) -> list[Tool]:
        strict = bool(self.mcp_config.get("convert_schemas_to_strict", False))
        return await function_tools(self.mcp_servers, run_context, self, strict)
