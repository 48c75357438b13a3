"""The todo MCP server in-process: tools, their effect on the tasks table, and user isolation.

Calls go through real MCP sessions (``fastmcp.Client`` over in-memory streams, and the Agents
SDK-facing ``InProcessMCPServer``), so ``_meta`` travels exactly as it does in a chat turn.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest
from agents import Agent, FunctionTool
from agents.mcp import MCPToolMetaContext, MCPUtil
from agents.run_context import RunContextWrapper
from agents.tool_context import ToolContext
from chat_app.mcp_servers import InProcessMCPServer, function_tools, user_meta
from chat_app.task_repository import TaskRepository
from chat_app.todo_mcp import TOOL_NAMES, USER_META_KEY, build_todo_server
from chatkit_backend.caller import Caller
from chatkit_backend.db import Database
from chatkit_backend.tables import TaskRow
from fastmcp import Client, FastMCP
from mcp.types import CallToolResult, TextContent
from sqlalchemy import select


@pytest.fixture(scope="module")
def todo_server(pg_database: Database) -> FastMCP:
    return build_todo_server(TaskRepository(pg_database))


@pytest.fixture
async def client(todo_server: FastMCP) -> AsyncIterator[Client[Any]]:
    async with Client(todo_server) as connected:
        yield connected


async def rows(database: Database, user_id: str) -> list[TaskRow]:
    """The user's rows straight from the table (not through the code under test)."""
    async with database.session() as session:
        result = await session.scalars(
            select(TaskRow).where(TaskRow.user_id == user_id).order_by(TaskRow.id)  # type: ignore[arg-type]
        )
        return list(result.all())


async def call(
    client: Client[Any], tool: str, user: Caller | None, **arguments: Any
) -> CallToolResult:
    meta = {USER_META_KEY: user.user_id} if user is not None else None
    return await client.call_tool_mcp(tool, arguments, meta=meta)


def payload(result: CallToolResult) -> Any:
    assert not result.is_error, text(result)
    return json.loads(text(result))


def text(result: CallToolResult) -> str:
    content = result.content[0]
    assert isinstance(content, TextContent)
    return content.text


async def test_tools_are_listed_without_any_user_parameter(client: Client[Any]) -> None:
    tools = (await client.list_tools_mcp()).tools
    assert sorted(tool.name for tool in tools) == sorted(TOOL_NAMES)
    for tool in tools:
        properties = tool.input_schema.get("properties", {})
        assert not [name for name in properties if "user" in name.lower()], tool.name
        assert tool.input_schema.get("additionalProperties") is False
        assert tool.description


async def test_each_tool_changes_only_the_callers_rows(
    client: Client[Any], pg_database: Database, alice: Caller
) -> None:
    added = payload(await call(client, "add_task", alice, title="buy milk", description="2 l"))
    assert (added["title"], added["description"], added["completed"]) == ("buy milk", "2 l", False)
    [row] = await rows(pg_database, alice.user_id)
    assert (row.id, row.title, row.description) == (added["id"], "buy milk", "2 l")

    other = payload(await call(client, "add_task", alice, title="walk the dog"))
    listed = payload(await call(client, "list_tasks", alice))
    assert [task["title"] for task in listed["tasks"]] == ["buy milk", "walk the dog"]

    payload(await call(client, "complete_task", alice, task_id=added["id"]))
    assert [r.completed for r in await rows(pg_database, alice.user_id)] == [True, False]
    open_only = payload(await call(client, "list_tasks", alice))
    assert [task["id"] for task in open_only["tasks"]] == [other["id"]]
    everything = payload(await call(client, "list_tasks", alice, include_completed=True))
    assert [task["id"] for task in everything["tasks"]] == [added["id"], other["id"]]

    payload(await call(client, "update_task", alice, task_id=other["id"], title="walk the cat"))
    assert [r.title for r in await rows(pg_database, alice.user_id)] == ["buy milk", "walk the cat"]

    deleted = payload(await call(client, "delete_task", alice, task_id=added["id"]))
    assert deleted["id"] == added["id"]
    assert [r.id for r in await rows(pg_database, alice.user_id)] == [other["id"]]


async def test_a_call_without_user_meta_is_refused(
    client: Client[Any], pg_database: Database, alice: Caller
) -> None:
    existing = payload(await call(client, "add_task", alice, title="keep me"))
    for tool, arguments in [
        ("add_task", {"title": "orphan"}),
        ("list_tasks", {}),
        ("complete_task", {"task_id": existing["id"]}),
        ("update_task", {"task_id": existing["id"], "title": "changed"}),
        ("delete_task", {"task_id": existing["id"]}),
    ]:
        result = await call(client, tool, None, **arguments)
        assert result.is_error, tool
        assert "No authenticated user" in text(result)
    [row] = await rows(pg_database, alice.user_id)
    assert (row.title, row.completed) == ("keep me", False)


async def test_bob_cannot_touch_alices_tasks_even_with_her_ids(
    client: Client[Any], pg_database: Database, alice: Caller, bob: Caller
) -> None:
    task = payload(await call(client, "add_task", alice, title="alice only"))

    assert payload(await call(client, "list_tasks", bob, include_completed=True)) == {"tasks": []}
    for tool, arguments in [
        ("complete_task", {"task_id": task["id"]}),
        ("update_task", {"task_id": task["id"], "title": "bob was here"}),
        ("delete_task", {"task_id": task["id"]}),
    ]:
        result = await call(client, tool, bob, **arguments)
        assert result.is_error, tool
        assert text(result) == f"Task {task['id']} not found."

    [row] = await rows(pg_database, alice.user_id)
    assert (row.title, row.completed) == ("alice only", False)
    assert await rows(pg_database, bob.user_id) == []


async def test_arguments_cannot_name_a_user(
    client: Client[Any], pg_database: Database, alice: Caller, bob: Caller
) -> None:
    result = await call(client, "add_task", alice, title="sneaky", user_id=bob.user_id)
    assert result.is_error
    assert "user_id" in text(result)
    assert await rows(pg_database, bob.user_id) == []
    assert await rows(pg_database, alice.user_id) == []


async def test_tool_errors_are_client_safe(client: Client[Any], alice: Caller) -> None:
    result = await call(client, "add_task", alice, title="   ")
    assert result.is_error
    assert text(result) == "A task needs a non-empty title."


async def test_in_process_server_carries_meta_from_the_run_context(
    todo_server: FastMCP, pg_database: Database, alice: Caller
) -> None:
    server = InProcessMCPServer(todo_server)
    await server.connect()
    try:
        assert sorted(tool.name for tool in await server.list_tools()) == sorted(TOOL_NAMES)
        run_context = RunContextWrapper(SimpleNamespace(request_context=alice))
        meta = user_meta(MCPToolMetaContext(run_context, server.name, "add_task", {}))
        assert meta == {USER_META_KEY: alice.user_id}
        result = await server.call_tool("add_task", {"title": "via sdk"}, meta=meta)
        assert not result.is_error
    finally:
        await server.cleanup()
    assert [r.title for r in await rows(pg_database, alice.user_id)] == ["via sdk"]


@pytest.mark.parametrize("context", [None, SimpleNamespace(), SimpleNamespace(request_context="u")])
def test_user_meta_needs_a_request_context(context: object) -> None:
    run_context = RunContextWrapper(context)
    assert user_meta(MCPToolMetaContext(run_context, "todo", "add_task", {})) is None


@pytest.fixture
def sessions(monkeypatch: pytest.MonkeyPatch) -> list[Client[Any]]:
    """The FastMCP client sessions opened from now on (what a turn's MCP server opens)."""
    opened: list[Client[Any]] = []
    enter = Client.__aenter__

    async def counted(client: Client[Any]) -> Client[Any]:
        opened.append(client)
        return await enter(client)

    monkeypatch.setattr(Client, "__aenter__", counted)
    return opened


async def test_a_turn_opens_a_session_only_for_a_tool_call(
    pg_database: Database, alice: Caller, sessions: list[Client[Any]]
) -> None:
    """Tools are listed once per process, so a turn whose model calls none opens no session;
    one that calls several opens one, at its first call, closed with the turn."""
    todo = build_todo_server(TaskRepository(pg_database))
    first = InProcessMCPServer(todo)
    await first.connect()
    await first.list_tools()  # the process's first listing needs a session
    await first.cleanup()
    assert len(sessions) == 1

    quiet = InProcessMCPServer(todo)
    await quiet.connect()
    assert len(await quiet.list_tools()) == len(TOOL_NAMES)
    await quiet.cleanup()
    assert len(sessions) == 1

    busy = InProcessMCPServer(todo)
    await busy.connect()
    meta = {USER_META_KEY: alice.user_id}
    try:
        results = await asyncio.gather(
            *(busy.call_tool("add_task", {"title": f"t{n}"}, meta=meta) for n in range(3))
        )
    finally:
        await busy.cleanup()
    assert not any(result.is_error for result in results)
    assert len(sessions) == 2
    assert len(await rows(pg_database, alice.user_id)) == 3


async def test_turns_share_the_converted_tools_each_with_its_own_session(
    pg_database: Database,
    alice: Caller,
    bob: Caller,
    sessions: list[Client[Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The process's server converts its tools once; a converted tool called in a turn runs in
    that turn's session, with that turn's user, and each session closes with its turn."""
    conversions: list[str] = []
    convert = MCPUtil.get_function_tools

    async def counted(server: Any, *args: Any, **kwargs: Any) -> Any:
        conversions.append(server.name)
        return await convert(server, *args, **kwargs)

    monkeypatch.setattr(MCPUtil, "get_function_tools", counted)
    server = InProcessMCPServer(build_todo_server(TaskRepository(pg_database)))
    agent = Agent(name="turns")

    async def turn(who: Caller, title: str) -> list[Any]:
        run_context = RunContextWrapper(SimpleNamespace(request_context=who))
        async with server.turn():
            tools = await function_tools([server], run_context, agent, True)
            [add] = [t for t in tools if isinstance(t, FunctionTool) and t.name == "add_task"]
            arguments = json.dumps({"title": title})
            context = ToolContext(
                run_context.context,
                tool_name=add.name,
                tool_call_id=f"call-{title}",
                tool_arguments=arguments,
            )
            await add.on_invoke_tool(context, arguments)
            return tools

    first, second = await asyncio.gather(turn(alice, "alice's"), turn(bob, "bob's"))
    third = await turn(alice, "again")

    assert conversions == [server.name]
    assert [tool.name for tool in first] == [tool.name for tool in third]
    assert first[0] is second[0] is third[0]
    assert len(sessions) == 3  # one per turn (the first also listed the tools)
    assert all(session.is_connected() is False for session in sessions)
    assert [r.title for r in await rows(pg_database, alice.user_id)] == ["alice's", "again"]
    assert [r.title for r in await rows(pg_database, bob.user_id)] == ["bob's"]


async def test_the_process_server_needs_a_turn_or_a_connect(pg_database: Database) -> None:
    server = InProcessMCPServer(build_todo_server(TaskRepository(pg_database)))
    with pytest.raises(RuntimeError, match="outside a turn"):
        await server.call_tool("list_tasks", {})
