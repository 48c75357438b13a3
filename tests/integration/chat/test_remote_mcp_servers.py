"""Remote MCP servers, against a stub MCP server and a stub OAuth token endpoint over real HTTP.

The stub MCP server records the headers of every request it receives: with every auth kind the
caller's JWT never arrives, and only the configured credentials do. Per-server allow-lists hold
(and never let a remote tool shadow a todo tool), a dead server or a failing token endpoint is
skipped, a plain-http non-loopback URL is a settings error, and remote tool output is bounded.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from agents import RunConfig, Runner
from agents.run_context import RunContextWrapper
from agents.testing import ScriptedModel, assistant_message, function_call
from chat_app import mcp_auth
from chat_app.agent import AgentFactory
from chat_app.mcp_servers import InProcessMCPServer, open_mcp_servers, truncated_note
from chat_app.task_repository import TaskRepository
from chat_app.todo_mcp import TOOL_NAMES, build_todo_server
from chatkit_backend.caller import Caller
from chatkit_backend.db import Database
from chatkit_backend.settings import Settings
from pydantic import ValidationError

from tests.support.aws import fake_aws
from tests.support.mcp_stubs import Recorded, TokenEndpoint, recording_mcp_server
from tests.support.servers import UvicornThread

CALLER_TOKEN = "eyJ.the-callers-own-jwt.sig"
API_KEY = "static-api-key-of-the-backend"
CLIENT_SECRET = "client-secret-of-the-backend"


@pytest.fixture(scope="module")
def recorded() -> Recorded:
    return Recorded()


@pytest.fixture(scope="module")
def stub_server(recorded: Recorded) -> Iterator[UvicornThread]:
    with recording_mcp_server(recorded) as server:
        yield server


@pytest.fixture
def mcp_url(stub_server: UvicornThread, recorded: Recorded) -> str:
    recorded.clear()
    return f"{stub_server.url}/mcp"


@pytest.fixture(scope="module")
def token_endpoint() -> Iterator[TokenEndpoint]:
    endpoint = TokenEndpoint()
    with endpoint.server():
        yield endpoint


@pytest.fixture
def tokens(token_endpoint: TokenEndpoint) -> TokenEndpoint:
    token_endpoint.reset()
    mcp_auth.clear_token_cache()
    return token_endpoint


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Two Secrets Manager secrets (moto): the static header value and the OAuth client secret."""
    with fake_aws(monkeypatch):
        client = boto3.client("secretsmanager")
        yield {
            "api_key": client.create_secret(Name="mcp-api-key", SecretString=API_KEY)["ARN"],
            "client": client.create_secret(Name="mcp-client", SecretString=CLIENT_SECRET)["ARN"],
        }


@pytest.fixture(scope="module")
def todo_server(pg_database: Database) -> InProcessMCPServer:
    return InProcessMCPServer(build_todo_server(TaskRepository(pg_database)))


def caller() -> Caller:
    return Caller(user_id="u-remote", bearer_token=CALLER_TOKEN)


def servers_of(*entries: Any) -> Settings:
    return Settings(mcp_servers=json.dumps(list(entries)))


def assert_caller_token_never_sent(recorded: Recorded) -> None:
    requests = recorded.all()
    assert requests, "the stub MCP server was never reached"
    for request in requests:
        assert CALLER_TOKEN not in json.dumps(request)


async def call_whoami(todo: InProcessMCPServer, settings: Settings, who: Caller) -> str:
    async with open_mcp_servers(
        todo, who, settings.mcp_servers, settings.mcp_allowed_tools
    ) as servers:
        assert len(servers) == 2, "the remote server was not connected"
        result = await servers[1].call_tool("whoami", {})
    return str(result.content[0].text)  # type: ignore[union-attr]


async def test_no_auth_sends_no_authorization(
    todo_server: InProcessMCPServer, mcp_url: str, recorded: Recorded
) -> None:
    settings = servers_of({"url": mcp_url, "allowed_tools": ["whoami"]})
    assert await call_whoami(todo_server, settings, caller()) == "<none>"
    assert_caller_token_never_sent(recorded)
    assert all("authorization" not in r["headers"] for r in recorded.all())


async def test_static_header_from_a_secret(
    todo_server: InProcessMCPServer, mcp_url: str, recorded: Recorded, secrets: dict[str, str]
) -> None:
    settings = servers_of(
        {
            "url": mcp_url,
            "allowed_tools": ["whoami"],
            "auth": {"type": "header", "secret_arn": secrets["api_key"], "scheme": "Bearer"},
        },
        {
            "url": mcp_url,
            "allowed_tools": ["whoami"],
            "auth": {"type": "header", "secret_arn": secrets["api_key"], "header": "X-Api-Key"},
        },
    )
    async with open_mcp_servers(todo_server, caller(), settings.mcp_servers) as servers:
        assert len(servers) == 3
        first = await servers[1].call_tool("whoami", {})
    assert first.content[0].text == f"Bearer {API_KEY}"  # type: ignore[union-attr]
    assert_caller_token_never_sent(recorded)
    assert any(r["headers"].get("x-api-key") == API_KEY for r in recorded.all())


async def test_client_credentials_token_for_the_servers_audience(
    todo_server: InProcessMCPServer,
    mcp_url: str,
    recorded: Recorded,
    tokens: TokenEndpoint,
    secrets: dict[str, str],
) -> None:
    auth = {
        "type": "client_credentials",
        "token_url": tokens.url,
        "client_id": "chatkit-backend",
        "client_secret_arn": secrets["client"],
        "resource": mcp_url,
        "scope": "tools.read",
    }
    settings = servers_of({"url": mcp_url, "allowed_tools": ["whoami"], "auth": auth})
    first = await call_whoami(todo_server, settings, caller())
    second = await call_whoami(todo_server, settings, Caller(user_id="u-other", bearer_token="t2"))
    assert first == second == "Bearer minted-cc-1"  # one backend token, cached, for every user
    [request] = tokens.recorded.all()
    assert request["form"] == {
        "grant_type": "client_credentials",
        "resource": mcp_url,
        "scope": "tools.read",
    }
    basic = request["headers"]["authorization"]
    assert basic.startswith("Basic ")
    assert CLIENT_SECRET not in basic  # base64, never plain
    assert CALLER_TOKEN not in json.dumps(tokens.recorded.all())
    assert_caller_token_never_sent(recorded)


async def test_token_exchange_sends_the_callers_token_to_the_token_endpoint_only(
    todo_server: InProcessMCPServer,
    mcp_url: str,
    recorded: Recorded,
    tokens: TokenEndpoint,
    secrets: dict[str, str],
) -> None:
    auth = {
        "type": "token_exchange",
        "token_url": tokens.url,
        "client_id": "chatkit-backend",
        "client_secret_arn": secrets["client"],
        "audience": "remote-tools",
    }
    settings = servers_of({"url": mcp_url, "allowed_tools": ["whoami"], "auth": auth})
    assert await call_whoami(todo_server, settings, caller()) == "Bearer minted-exchange-1"
    [request] = tokens.recorded.all()
    assert request["form"] == {
        "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
        "subject_token": CALLER_TOKEN,
        "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
        "requested_token_type": "urn:ietf:params:oauth:token-type:access_token",
        "audience": "remote-tools",
    }
    assert_caller_token_never_sent(recorded)


async def test_an_exchange_that_echoes_the_callers_token_is_refused(
    todo_server: InProcessMCPServer,
    mcp_url: str,
    recorded: Recorded,
    tokens: TokenEndpoint,
    secrets: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="chat_app.mcp_servers")
    tokens.echo_subject = True
    auth = {
        "type": "token_exchange",
        "token_url": tokens.url,
        "client_id": "chatkit-backend",
        "client_secret_arn": secrets["client"],
        "resource": mcp_url,
    }
    settings = servers_of({"url": mcp_url, "allowed_tools": ["whoami"], "auth": auth})
    async with open_mcp_servers(todo_server, caller(), settings.mcp_servers) as servers:
        assert len(servers) == 1  # skipped for this turn
    assert "handed back the caller's own token" in caplog.text
    assert CALLER_TOKEN not in caplog.text
    assert recorded.all() == []


@pytest.mark.parametrize("status", [401, 500])
async def test_a_failing_token_endpoint_skips_the_server(
    todo_server: InProcessMCPServer,
    mcp_url: str,
    recorded: Recorded,
    tokens: TokenEndpoint,
    secrets: dict[str, str],
    caplog: pytest.LogCaptureFixture,
    status: int,
) -> None:
    caplog.set_level(logging.WARNING, logger="chat_app.mcp_servers")
    tokens.status = status
    auth = {
        "type": "client_credentials",
        "token_url": tokens.url,
        "client_id": "chatkit-backend",
        "client_secret_arn": secrets["client"],
        "audience": "remote-tools",
    }
    settings = servers_of({"url": mcp_url, "allowed_tools": ["whoami"], "auth": auth})
    async with open_mcp_servers(todo_server, caller(), settings.mcp_servers) as servers:
        assert len(servers) == 1
    assert f"answered {status}" in caplog.text
    assert CLIENT_SECRET not in caplog.text
    assert recorded.all() == []


async def test_token_exchange_without_a_caller_token_skips_the_server(
    todo_server: InProcessMCPServer, mcp_url: str, tokens: TokenEndpoint, secrets: dict[str, str]
) -> None:
    auth = {
        "type": "token_exchange",
        "token_url": tokens.url,
        "client_id": "chatkit-backend",
        "client_secret_arn": secrets["client"],
        "audience": "remote-tools",
    }
    settings = servers_of({"url": mcp_url, "allowed_tools": ["whoami"], "auth": auth})
    async with open_mcp_servers(
        todo_server, Caller(user_id="dev-user"), settings.mcp_servers
    ) as servers:
        assert len(servers) == 1
    assert tokens.recorded.all() == []


async def test_per_server_allow_lists(
    todo_server: InProcessMCPServer, mcp_url: str, recorded: Recorded
) -> None:
    settings = Settings(
        mcp_servers=json.dumps(
            [
                {"url": mcp_url, "allowed_tools": ["whoami", "add_task"]},
                {"url": mcp_url, "allowed_tools": ["flood"]},
                mcp_url,  # a plain URL: MCP_ALLOWED_TOOLS
                {"url": mcp_url, "allowed_tools": []},  # nothing exposed: not connected
            ]
        ),
        mcp_allowed_tools=["picture"],
    )
    async with open_mcp_servers(
        todo_server, caller(), settings.mcp_servers, settings.mcp_allowed_tools
    ) as servers:
        todo, first, second, third = servers
        assert sorted(tool.name for tool in await todo.list_tools()) == sorted(TOOL_NAMES)
        assert [tool.name for tool in await first.list_tools()] == ["whoami"]  # add_task blocked
        assert [tool.name for tool in await second.list_tools()] == ["flood"]
        assert [tool.name for tool in await third.list_tools()] == ["picture"]
    assert_caller_token_never_sent(recorded)


async def test_remote_tool_output_is_bounded_text(
    todo_server: InProcessMCPServer, mcp_url: str
) -> None:
    settings = servers_of({"url": mcp_url, "allowed_tools": ["flood", "picture"]})
    async with open_mcp_servers(
        todo_server, caller(), settings.mcp_servers, output_max_chars=500
    ) as servers:
        flood = await servers[1].call_tool("flood", {})
        picture = await servers[1].call_tool("picture", {})
    [text] = flood.content
    assert text.text == "x" * 500 + truncated_note(500)  # type: ignore[union-attr]
    assert flood.structured_content is None
    assert [part.type for part in picture.content] == ["text", "text"]
    assert picture.content[1].text == "[1 non-text part(s) omitted]"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "entry",
    [
        "http://tools.example.com/mcp",
        {"url": "http://10.0.0.5/mcp"},
        {"url": "https://user:pw@tools.example.com/mcp"},
        {"url": "https://tools.example.com/mcp?token=abc"},
        {"url": "ftp://tools.example.com/mcp"},
        {
            "url": "https://tools.example.com/mcp",
            "auth": {
                "type": "client_credentials",
                "token_url": "http://idp.example.com/token",
                "client_id": "c",
                "client_secret_arn": "arn:aws:secretsmanager:us-east-1:1:secret:c-AbC123",
                "audience": "a",
            },
        },
        {
            "url": "https://tools.example.com/mcp",
            "auth": {
                "type": "token_exchange",
                "token_url": "https://idp.example.com/token",
                "client_id": "c",
                "client_secret_arn": "arn:aws:secretsmanager:us-east-1:1:secret:c-AbC123",
            },
        },
        {"url": "https://tools.example.com/mcp", "auth": {"type": "passthrough"}},
        {"url": "https://tools.example.com/mcp", "forward_token": True},
    ],
)
def test_unsafe_entries_are_refused_at_start(entry: Any) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(mcp_servers=json.dumps([entry]))
    assert "pw" not in str(refused.value)
    assert "abc" not in str(refused.value)


def test_loopback_http_and_https_are_accepted() -> None:
    settings = Settings(
        mcp_servers="http://127.0.0.1:9000/mcp,http://localhost:9/mcp,https://tools.example.com/mcp"
    )
    assert [server.label for server in settings.mcp_servers] == [
        "127.0.0.1:9000/mcp",
        "localhost:9/mcp",
        "tools.example.com/mcp",
    ]


async def test_a_dead_server_is_skipped_with_a_warning(
    todo_server: InProcessMCPServer, mcp_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="chat_app.mcp_servers")
    dead = UvicornThread(_never_built, name="dead")  # bound, never started: nothing answers
    dead_url = f"{dead.url}/mcp"
    settings = servers_of(
        {"url": dead_url, "allowed_tools": ["whoami"]},
        {"url": mcp_url, "allowed_tools": ["whoami"]},
    )
    dead.stop()
    async with open_mcp_servers(todo_server, caller(), settings.mcp_servers) as servers:
        assert len(servers) == 2
        assert [tool.name for tool in await servers[1].list_tools()] == ["whoami"]
    [warning] = [r for r in caplog.records if r.name == "chat_app.mcp_servers"]
    assert "unavailable" in warning.getMessage()
    assert dead_url.removeprefix("http://") in warning.getMessage()
    assert CALLER_TOKEN not in caplog.text


def _never_built() -> Any:
    raise AssertionError("never started")


async def test_the_agent_calls_a_remote_tool_without_the_callers_token(
    pg_database: Database, mcp_url: str, recorded: Recorded
) -> None:
    model = ScriptedModel(
        [
            [function_call("whoami", {}, call_id="call-1")],
            [assistant_message("done")],
        ]
    )
    settings = Settings(mcp_servers=mcp_url, mcp_allowed_tools=["whoami"])
    factory = AgentFactory(settings, pg_database, model=model)
    user = caller()
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
    assert "<none>" in str(output["output"])
    assert_caller_token_never_sent(recorded)


async def test_servers_without_allowed_tools_are_not_connected(
    pg_database: Database, mcp_url: str, recorded: Recorded, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="chat_app.agent")
    settings = Settings(mcp_servers=mcp_url, mcp_allowed_tools=[])
    factory = AgentFactory(settings, pg_database, model=ScriptedModel([]))
    assert "has no allowed tools" in caplog.text
    async with factory.open(Caller(user_id="u-none")) as agent:
        assert len(agent.mcp_servers) == 1
    assert recorded.all() == []
