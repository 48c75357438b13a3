"""Stubs on 127.0.0.1 for the remote MCP tests: an MCP server that records every request's
headers, and an OAuth token endpoint (client credentials and RFC 8693 token exchange).

Both are real HTTP servers under uvicorn (:class:`tests.support.servers.UvicornThread`), so what
they record is what crossed the wire.
"""

from __future__ import annotations

import base64
import itertools
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastmcp import FastMCP
from fastmcp.server.dependencies import get_http_headers
from mcp.types import ImageContent, TextContent
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from tests.support.servers import UvicornThread

BIG_OUTPUT_CHARS = 100_000


@dataclass
class Recorded:
    """What a stub received, appended from the server thread, read from the test."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.requests.append(entry)

    def all(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.requests)

    def clear(self) -> None:
        with self.lock:
            self.requests.clear()


def stub_mcp_server() -> FastMCP:
    mcp = FastMCP("remote-stub")

    @mcp.tool
    def whoami() -> str:
        """The Authorization header this server received."""
        return get_http_headers(include={"authorization"}).get("authorization", "<none>")

    @mcp.tool
    def forbidden() -> str:
        """Not on any allow-list."""
        return "should never be reachable"

    @mcp.tool
    def add_task(title: str) -> str:
        """Same name as a todo tool: must not shadow it."""
        return f"remote add {title}"

    @mcp.tool
    def flood() -> str:
        """Far more text than the model should get from one call."""
        return "x" * BIG_OUTPUT_CHARS

    @mcp.tool
    def picture() -> list[TextContent | ImageContent]:
        """A text part and an image part."""
        pixel = base64.b64encode(b"\x89PNG\r\n\x1a\n").decode()
        return [
            TextContent(type="text", text="a picture follows"),
            ImageContent(type="image", data=pixel, mime_type="image/png"),
        ]

    return mcp


class HeaderRecorder:
    """ASGI middleware: appends the headers of every HTTP request to ``recorded``."""

    def __init__(self, app: ASGIApp, recorded: Recorded) -> None:
        self.app = app
        self.recorded = recorded

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
            self.recorded.add({"path": scope["path"], "headers": headers})
        await self.app(scope, receive, send)


def recording_mcp_server(recorded: Recorded) -> UvicornThread:
    """The stub MCP server (not started); its URL is ``<server.url>/mcp``."""

    @asynccontextmanager
    async def app() -> AsyncIterator[ASGIApp]:
        http_app = stub_mcp_server().http_app(stateless_http=True, json_response=True)
        yield HeaderRecorder(http_app, recorded)

    return UvicornThread(app, lifespan="on", name="mcp-stub")


class TokenEndpoint:
    """An OAuth token endpoint at ``/token``: records each request's headers and form.

    ``echo_subject``: answer a token exchange with the subject token itself (a misbehaving
    authorization server the client must refuse). ``status``: force an error answer.
    """

    def __init__(self) -> None:
        self.url = ""
        """``<server>/token`` once :meth:`server` was called."""
        self.recorded = Recorded()
        self.reset()

    def reset(self) -> None:
        """Forget what was received, answer normally, number minted tokens from 1 again."""
        self.recorded.clear()
        self.echo_subject = False
        self.status = 200
        self._numbers = itertools.count(1)

    def minted(self, grant: str) -> str:
        return f"minted-{grant}-{next(self._numbers)}"

    async def _token(self, request: Request) -> JSONResponse:
        form = dict(await request.form())
        self.recorded.add({"headers": dict(request.headers), "form": form})
        if self.status != 200:
            return JSONResponse({"error": "invalid_client"}, status_code=self.status)
        if form.get("grant_type") == "client_credentials":
            token = self.minted("cc")
        elif self.echo_subject:
            token = str(form.get("subject_token"))
        else:
            token = self.minted("exchange")
        return JSONResponse(
            {
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": 300,
                "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
            }
        )

    def server(self) -> UvicornThread:
        """The endpoint's server (not started); sets :attr:`url`."""

        @asynccontextmanager
        async def app() -> AsyncIterator[ASGIApp]:
            yield Starlette(routes=[Route("/token", self._token, methods=["POST"])])

        server = UvicornThread(app, lifespan="off", name="token-endpoint")
        self.url = f"{server.url}/token"
        return server
