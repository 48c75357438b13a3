"""Extra MCP servers by URL, against a real FastMCP server served by uvicorn on 127.0.0.1.

Checks that the user's bearer token arrives as ``Authorization``, that only allow-listed tools are
exposed (and never ones shadowing the todo tools), and that a dead server is skipped.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator
from types import SimpleNamespace

import pytest
import uvicorn
from agents import RunConfig, Runner
from agents.run_context import RunContextWrapper
from agents.testing import ScriptedModel, assistant_message, function_call
from chat_app.agent import AgentFactory
from chat_app.mcp_servers import open_mcp_servers
from chat_app.task_repository import TaskRepository
from chat_app.todo_mcp import TOOL_NAMES, build_todo_server
from chatkit_backend.caller import Caller
from chatkit_backend.db import Database
from chatkit_backend.settings import Settings
from fastmcp import FastMCP
from fastmcp.server.dependencies import get_http_headers


def remote_app() -> FastMCP:
    mcp = FastMCP("remote")

    @mcp.tool
    def whoami() -> str:
        """The Authorization header this server received."""
        return get_http_headers(include={"authorization"}).get("authorization", "<none>")

    @mcp.tool
    def forbidden() -> str:
        """Not on the allow-list."""
        return "should never be reachable"

    @mcp.tool
    def add_task(title: str) -> str:
        """Same name as a todo tool: must not shadow it."""
        return f"remote add {title}"

    return mcp


@pytest.fixture(scope="module")
async def remote_url() -> AsyncIterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = remote_app().http_app(stateless_http=True, json_response=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        assert not serving.done(), "uvicorn stopped before it started"
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{port}/mcp"
    server.should_exit = True
    await serving
    sock.close()


@pytest.fixture
def dead_url() -> str:
    """A loopback URL where nothing listens (the port was free a moment ago)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/mcp"


@pytest.fixture(scope="module")
def todo_server(pg_database: Database) -> FastMCP:
    return build_todo_server(TaskRepository(pg_database))


async def test_token_is_forwarded_and_allow_list_applies(
    todo_server: FastMCP, remote_url: str
) -> None:
    user = Caller(user_id="u-remote", bearer_token="token-of-the-user")
    async with open_mcp_servers(
        todo_server, user, [remote_url], allowed_tools=["whoami", "add_task"]
    ) as servers:
        todo, remote = servers
        assert sorted(tool.name for tool in await todo.list_tools()) == sorted(TOOL_NAMES)
        assert [tool.name for tool in await remote.list_tools()] == ["whoami"]
        result = await remote.call_tool("whoami", {})
    assert result.content[0].text == "Bearer token-of-the-user"  # type: ignore[union-attr]


async def test_no_token_no_header(todo_server: FastMCP, remote_url: str) -> None:
    async with open_mcp_servers(
        todo_server, Caller(user_id="u-dev"), [remote_url], allowed_tools=["whoami"]
    ) as servers:
        result = await servers[1].call_tool("whoami", {})
    assert result.content[0].text == "<none>"  # type: ignore[union-attr]


async def test_a_dead_server_is_skipped_with_a_warning(
    todo_server: FastMCP, remote_url: str, dead_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="chat_app.mcp_servers")
    user = Caller(user_id="u-dead", bearer_token="secret-token")
    async with open_mcp_servers(
        todo_server, user, [dead_url, remote_url], allowed_tools=["whoami"]
    ) as servers:
        assert len(servers) == 2
        assert [tool.name for tool in await servers[1].list_tools()] == ["whoami"]
    [warning] = [r for r in caplog.records if r.name == "chat_app.mcp_servers"]
    assert "unavailable" in warning.getMessage()
    assert dead_url.removeprefix("http://") in warning.getMessage()
    assert "secret-token" not in caplog.text


async def test_agent_calls_a_remote_tool_with_the_users_token(
    pg_database: Database, remote_url: str
) -> None:
    model = ScriptedModel(
        [
            [function_call("whoami", {}, call_id="call-1")],
            [assistant_message("done")],
        ]
    )
    settings = Settings(mcp_servers=[remote_url], mcp_allowed_tools=["whoami"])
    factory = AgentFactory(settings, pg_database, model=model)
    user = Caller(user_id="u-agent", bearer_token="agent-token")
    context = SimpleNamespace(request_context=user)
    async with factory.open(user) as agent:
        tools = await agent.get_mcp_tools(RunContextWrapper(context))
        assert sorted(tool.name for tool in tools) == sorted([*TOOL_NAMES, "whoami"])
        result = Runner.run_streamed(
            agent, "who am I?", context=context, run_config=RunConfig(tracing_disabled=True)
        )
        async for _ in result.stream_events():
            pass
    assert result.final_output == "done"
    [output] = [item for item in model.calls[1].input if item.get("type") == "function_call_output"]
    assert "Bearer agent-token" in str(output["output"])


async def test_remote_servers_are_not_connected_without_an_allow_list(
    pg_database: Database, remote_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="chat_app.agent")
    settings = Settings(mcp_servers=[remote_url], mcp_allowed_tools=[])
    factory = AgentFactory(settings, pg_database, model=ScriptedModel([]))
    assert "MCP_ALLOWED_TOOLS is empty" in caplog.text
    async with factory.open(Caller(user_id="u-none")) as agent:
        assert len(agent.mcp_servers) == 1
