"""The MCP servers one agent turn talks to: the in-process todo server plus configured remote ones.

In-process transport: the Agents SDK has none, so :class:`InProcessMCPServer` is a small
``MCPServer`` over ``fastmcp.Client(server)``, which speaks real MCP over in-memory streams (at
most one session per turn, opened at its first tool call, no HTTP, no lifespan to keep alive
between Lambda invocations). Measured, it is cheaper per turn (connect + list + one call) than
the alternative,
``MCPServerStreamableHttp`` over an ASGI transport onto ``http_app(stateless_http=True)``, which
also needs the app's lifespan held open for the whole process. The server object lives as long
as the process (its tools are listed and converted to function tools once); each turn runs in
its own :meth:`InProcessMCPServer.turn` scope, which holds that turn's session.

Identity: :func:`user_meta` is the SDK ``tool_meta_resolver`` of the todo server. It reads the
user from the run context (ChatKit's ``AgentContext.request_context``, or any object with a
``request_context`` attribute) and puts it in the request ``_meta``; the model never sees or
chooses it. Remote servers get no ``_meta`` user and never the caller's token: each is sent only
the credentials its ``MCP_SERVERS`` entry configures (:mod:`chat_app.mcp_auth`), and the user's
identity reaches it only inside a token minted for its audience (token exchange), or not at all.
What remote tools return is untrusted input: bounded, and never executed (:class:`RemoteMCPServer`).

Every tool's text output is cut at ``TOOL_OUTPUT_MAX_CHARS``, with a marker the model reads
(:func:`bound_output`): a listing of the todo tools or a remote server's answer cannot fill the
model's context.

Results: the SDK hands the model the tool's text content; :func:`structured_result` (the todo
server's ``custom_data_extractor``) also keeps its full structured content on the run's tool
output item (SDK-only data, never sent to the model), which the widgets are built from.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from contextvars import ContextVar
from copy import deepcopy
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from agents.exceptions import UserError
from agents.mcp import (
    MCPServer,
    MCPServerStreamableHttp,
    MCPToolCustomDataContext,
    MCPToolMetaContext,
    MCPUtil,
)
from agents.run_context import RunContextWrapper
from agents.tool import Tool
from chatkit_backend.caller import Caller
from chatkit_backend.remote_mcp import RemoteMcpServer
from mcp.types import CallToolResult, GetPromptResult, ListPromptsResult, TextContent
from mcp.types import Tool as MCPTool

from .mcp_auth import McpAuthError, server_headers
from .todo_contract import SERVER_NAME, TOOL_NAMES, USER_META_KEY

if TYPE_CHECKING:
    from agents.agent import AgentBase
    from fastmcp import Client, FastMCP

logger = logging.getLogger(__name__)

_listed_tools: WeakKeyDictionary[FastMCP, list[MCPTool]] = WeakKeyDictionary()
"""Tool listings of in-process servers: fixed once built, so listed once per process."""

REMOTE_TIMEOUT_SECONDS = 10.0
"""HTTP and MCP read timeout for remote servers (a slow one must not stall every turn)."""

DEFAULT_OUTPUT_MAX_CHARS = 20_000
"""Most text one tool call hands the model unless ``TOOL_OUTPUT_MAX_CHARS`` says otherwise."""


def truncated_note(limit: int) -> str:
    """The marker after a cut tool output, so the model knows it saw part of it."""
    return f" [output truncated: the tool returned more than {limit} characters]"


def user_meta(context: MCPToolMetaContext) -> dict[str, Any] | None:
    """The ``_meta`` of a todo tool call: the user of the trusted run context, if there is one.

    Returning ``None`` (no request context) sends no user, and the server refuses the call.
    """
    caller = getattr(context.run_context.context, "request_context", None)
    if isinstance(caller, Caller) and caller.user_id:
        return {USER_META_KEY: caller.user_id}
    return None


STRUCTURED_RESULT_KEY = "structured_content"
"""Where :func:`structured_result` puts a tool's structured result in the output's custom data."""


def structured_result(context: MCPToolCustomDataContext) -> dict[str, Any] | None:
    """A successful call's full ``structuredContent``, kept for the agent side (not the model).

    The model gets the text content, which other limits may shorten; a widget needs the whole
    result (every task of a listing), so it is read from here.
    """
    if context.is_error or context.structured_content is None:
        return None
    return {STRUCTURED_RESULT_KEY: deepcopy(dict(context.structured_content))}


Params = dict[str, Any] | None
"""A tool call's arguments or ``_meta``, as the Agents SDK's ``MCPServer.call_tool`` takes them."""


class _Session:
    """One FastMCP client session, opened on first use (once, however many calls ask at once).

    ``fastmcp.client`` is imported here: it brings its auth stack (key-value stores, beartype),
    which the init phase and non-streaming requests do not need. The first turn pays it, or the
    SnapStart warm-up (``AgentFactory.warm_up``) before the snapshot. FastMCP runs the session in
    a task of its own, so it may be opened in a tool call's task and closed in the turn's.
    """

    def __init__(self, server: FastMCP) -> None:
        self.server = server
        self._client: Client[Any] | None = None
        self._opening = asyncio.Lock()

    async def client(self) -> Client[Any]:
        async with self._opening:
            if self._client is None:
                from fastmcp import Client

                client: Client[Any] = Client(self.server)
                await client.__aenter__()
                self._client = client
            return self._client

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.__aexit__(None, None, None)


_TURN_SESSION: ContextVar[_Session | None] = ContextVar("in_process_mcp_session", default=None)
"""The session of the turn running in this context (:meth:`InProcessMCPServer.turn`); the SDK's
tool calls run in tasks of the turn, which copy it."""


class InProcessMCPServer(MCPServer):
    """An Agents SDK MCP server backed by a FastMCP server in this process.

    One per process and FastMCP server: each turn uses it inside :meth:`turn` (its own session).
    Used on its own, as the SDK's ``MCPServer`` protocol has it, :meth:`connect` and
    :meth:`cleanup` bracket a session of the object's.
    """

    def __init__(
        self,
        server: FastMCP,
        *,
        name: str = SERVER_NAME,
        output_max_chars: int = DEFAULT_OUTPUT_MAX_CHARS,
    ) -> None:
        super().__init__(tool_meta_resolver=user_meta, custom_data_extractor=structured_result)
        self._server = server
        self._name = name
        self._output_max_chars = output_max_chars
        self._own: _Session | None = None
        self._function_tools: dict[tuple[bool, int], list[Tool]] = {}
        self._converting = asyncio.Lock()

    @property
    def name(self) -> str:
        return self._name

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[InProcessMCPServer]:
        """The scope of one turn: its calls share one session, closed when the block ends."""
        session = _Session(self._server)
        token = _TURN_SESSION.set(session)
        try:
            yield self
        finally:
            await session.close()
            with suppress(ValueError):  # closed from another context (a generator finalised)
                _TURN_SESSION.reset(token)

    async def connect(self) -> None:
        """Nothing to open yet: the session opens at the first call that needs one.

        Listing the tools needs none once the process has listed them, so a turn whose model
        calls no tool never opens a session, and one that does opens it at its first call.
        """
        if self._own is None:
            self._own = _Session(self._server)

    async def _session(self) -> Client[Any]:
        """The session of the turn in this context, else the object's own (:meth:`connect`)."""
        session = _TURN_SESSION.get()
        if session is None or session.server is not self._server:
            session = self._own
        if session is None:
            raise RuntimeError("InProcessMCPServer used outside a turn and before connect()")
        return await session.client()

    async def cleanup(self) -> None:
        own, self._own = self._own, None
        if own is not None:
            await own.close()

    async def list_tools(
        self,
        run_context: RunContextWrapper[Any] | None = None,
        agent: AgentBase | None = None,
    ) -> list[MCPTool]:
        """The server's tools (listed once per process; copies, so callers cannot alter them)."""
        tools = _listed_tools.get(self._server)
        if tools is None:
            tools = (await (await self._session()).list_tools_mcp()).tools
            _listed_tools[self._server] = tools
        return [tool.model_copy(deep=True) for tool in tools]

    async def function_tools(
        self,
        run_context: RunContextWrapper[Any],
        agent: AgentBase,
        convert_schemas_to_strict: bool,
        server_index: int,
    ) -> list[Tool]:
        """The tools as the SDK offers them to the model, converted once per process: the
        listing is fixed, and a function tool carries no state of a turn (the run context and
        the turn's session are found when it is called)."""
        key = (convert_schemas_to_strict, server_index)
        async with self._converting:
            if key not in self._function_tools:
                self._function_tools[key] = await MCPUtil.get_function_tools(
                    self, convert_schemas_to_strict, run_context, agent, server_index=server_index
                )
        return list(self._function_tools[key])

    async def call_tool(
        self, tool_name: str, arguments: Params, meta: Params = None
    ) -> CallToolResult:
        session = await self._session()
        result = await session.call_tool_mcp(tool_name, arguments or {}, meta=meta)
        # The structured result stays whole: widgets are built from it, the model never sees it.
        bounded = bound_output(result, self._output_max_chars)
        bounded.structured_content = result.structured_content
        return bounded

    async def list_prompts(self) -> ListPromptsResult:
        return await (await self._session()).list_prompts_mcp()

    async def get_prompt(
        self, name: str, arguments: dict[str, Any] | None = None
    ) -> GetPromptResult:
        return await (await self._session()).get_prompt_mcp(name, arguments)


class RemoteMCPServer(MCPServerStreamableHttp):
    """A remote streamable-HTTP MCP server whose tool output is bounded untrusted input.

    What a remote tool returns goes to the model as data and nowhere else: nothing here runs,
    fetches or renders it. Text is cut at ``output_max_chars`` (over all parts); images, audio,
    embedded resources and structured content are dropped with a note, so a remote server
    cannot fill the model's context or smuggle binary payloads into the thread.
    """

    def __init__(
        self, *args: Any, output_max_chars: int = DEFAULT_OUTPUT_MAX_CHARS, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self._output_max_chars = output_max_chars

    async def call_tool(
        self, tool_name: str, arguments: Params, meta: Params = None
    ) -> CallToolResult:
        result = await super().call_tool(tool_name, arguments, meta)
        return bound_output(result, self._output_max_chars)


def bound_output(result: CallToolResult, limit: int) -> CallToolResult:
    """``result`` as text parts of at most ``limit`` characters in all, cut with
    :func:`truncated_note`, and a note for each kind of part dropped (see above)."""
    budget = limit
    parts: list[TextContent] = []
    dropped = 0
    for part in result.content:
        if not isinstance(part, TextContent):
            dropped += 1
            continue
        text = part.text[:budget]
        if len(text) < len(part.text):
            text += truncated_note(limit)
        budget -= min(len(part.text), budget)
        parts.append(TextContent(type="text", text=text))
    if dropped:
        parts.append(TextContent(type="text", text=f"[{dropped} non-text part(s) omitted]"))
    return CallToolResult(content=list(parts), is_error=result.is_error)


def remote_server(
    server: RemoteMcpServer,
    allowed_tools: Sequence[str],
    headers: dict[str, str],
    output_max_chars: int = DEFAULT_OUTPUT_MAX_CHARS,
) -> RemoteMCPServer:
    """A remote server seen through its tool allow-list, sending exactly ``headers``.

    ``headers`` are this backend's own credentials for that server (:mod:`chat_app.mcp_auth`),
    never the caller's token. Tools named like the todo tools are blocked so they cannot shadow
    them.
    """
    return RemoteMCPServer(
        params={
            "url": server.url,
            "headers": headers,
            "timeout": REMOTE_TIMEOUT_SECONDS,
            "sse_read_timeout": REMOTE_TIMEOUT_SECONDS,
        },
        name=server.label,
        client_session_timeout_seconds=REMOTE_TIMEOUT_SECONDS,
        tool_filter={
            "allowed_tool_names": list(allowed_tools),
            "blocked_tool_names": list(TOOL_NAMES),
        },
        cache_tools_list=True,
        output_max_chars=output_max_chars,
    )


def exposed_tools(server: RemoteMcpServer, default_allowed: Sequence[str]) -> list[str]:
    """The server's allow-list: its own ``allowed_tools``, else ``MCP_ALLOWED_TOOLS``."""
    return list(server.allowed_tools if server.allowed_tools is not None else default_allowed)


async def function_tools(
    servers: Sequence[MCPServer],
    run_context: RunContextWrapper[Any],
    agent: AgentBase,
    convert_schemas_to_strict: bool,
) -> list[Tool]:
    """The tools of ``servers`` as the SDK's ``Agent.get_mcp_tools`` builds them (same order,
    same server indexes, same refusal of duplicate names), the in-process ones from their
    per-process conversion (:meth:`InProcessMCPServer.function_tools`)."""
    tools: list[Tool] = []
    for index, server in enumerate(servers):
        if isinstance(server, InProcessMCPServer):
            listed = await server.function_tools(
                run_context, agent, convert_schemas_to_strict, index
            )
        else:
            listed = await MCPUtil.get_function_tools(
                server, convert_schemas_to_strict, run_context, agent, server_index=index
            )
        tools.extend(listed)
    names = [tool.name for tool in tools]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise UserError(f"Duplicate tool names found across MCP servers: {', '.join(duplicates)}")
    return tools


@asynccontextmanager
async def open_mcp_servers(
    todo: InProcessMCPServer,
    caller: Caller,
    remote: Sequence[RemoteMcpServer] = (),
    default_allowed_tools: Sequence[str] = (),
    output_max_chars: int = DEFAULT_OUTPUT_MAX_CHARS,
) -> AsyncIterator[list[MCPServer]]:
    """Connect the servers of one turn and close them afterwards.

    The todo server (the process's, :class:`InProcessMCPServer`) is entered for this turn. A
    remote server whose allow-list is empty is not contacted; one whose credentials cannot be
    had, or that fails to connect, is skipped with a warning: the turn goes on with the tools it
    has. Each remote server sends at most ``output_max_chars`` of text per call to the model.
    """
    async with AsyncExitStack() as stack:
        servers: list[MCPServer] = [await stack.enter_async_context(todo.turn())]
        for entry in remote:
            allowed = exposed_tools(entry, default_allowed_tools)
            if not allowed:
                continue
            try:
                headers = await server_headers(entry, caller)
                connected = remote_server(entry, allowed, headers, output_max_chars)
                await connected.connect()
            except Exception as exc:
                logger.warning(
                    "MCP server %s unavailable, continuing without it: %s",
                    entry.label,
                    exc if isinstance(exc, McpAuthError) else type(exc).__name__,
                )
                continue
            stack.push_async_callback(connected.cleanup)
            servers.append(connected)
        yield servers
