"""SnapStart hooks of the chat function: two POST routes the Lambda Web Adapter calls.

The app runs as a separate process under the adapter (``run.sh``), so it cannot register the
runtime's hooks itself. With ``AWS_LWA_SNAPSTART_BEFORE_CHECKPOINT_PATH`` /
``AWS_LWA_SNAPSTART_AFTER_RESTORE_PATH`` set, the adapter POSTs to those paths on the app before
the snapshot and after each restore (before its readiness check), and fails the phase on a non-2xx
answer.

Before the snapshot everything heavy is exercised once (the todo server's tool listing and strict
schemas, the request path up to authentication, the pydantic models a turn uses; the app built the
service with the agent stack already), then whatever holds a socket is closed (the model's HTTP
client, the database pool). After a restore ``random`` is reseeded and secrets and signing keys
are allowed to refresh (:mod:`chatkit_backend.snapstart`); the database reconnects on first use.

Who may call them. The adapter already answers 403 to outside requests for these paths, but the
app must not rely on running behind it (the local server, a misconfigured stage), so a hook runs
only when all three hold:

1. the route exists: it is added only when the adapter variable naming it is set (and names an
   absolute path); without it the path is an ordinary 404;
2. the peer is loopback (``127.0.0.0/8`` or ``::1``): the adapter calls the app on 127.0.0.1;
3. the request carries none of the headers of a forwarded invocation: the adapter adds
   ``x-amzn-request-context`` and ``x-amzn-lambda-context`` to every request it forwards from the
   function URL, and the URL's front end adds ``x-forwarded-for``; the adapter's own hook calls
   carry none of them. (Rule 2 alone is not enough: behind the adapter every request, the
   user's included, comes from loopback.)

Otherwise the answer is 403 and nothing runs: a caller able to trigger the hooks could close the
pool or flush the caches at will.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from chatkit_backend.auth import Authenticator
from chatkit_backend.db import Database
from chatkit_backend.init_phase import collect_before_snapshot, complete_models
from chatkit_backend.settings import Settings
from chatkit_backend.snapstart import refresh_after_restore, release_before_snapshot
from fastapi import FastAPI, Request
from starlette.responses import JSONResponse, Response

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message

logger = logging.getLogger(__name__)

BEFORE_CHECKPOINT_ENV = "AWS_LWA_SNAPSTART_BEFORE_CHECKPOINT_PATH"
AFTER_RESTORE_ENV = "AWS_LWA_SNAPSTART_AFTER_RESTORE_PATH"

INVOCATION_HEADERS = ("x-amzn-request-context", "x-amzn-lambda-context", "x-forwarded-for")
"""Headers present on forwarded function URL invocations and absent from the adapter's hooks."""

WARM_UP_REQUEST_ID = "snapstart-warm-up"

DEFERRED_MODEL_MODULES = ("chatkit.types", "openai.types.responses", "mcp_types", "agents")
"""Where the pydantic models of a turn live whose schemas are built on first use."""


def is_adapter_call(client_host: str | None, headers: Mapping[str, str]) -> bool:
    """Rules 2 and 3 of the module docstring: a loopback peer, no invocation header."""
    if client_host is None:
        return False
    try:
        loopback = ipaddress.ip_address(client_host).is_loopback
    except ValueError:
        return False
    return loopback and not any(name in headers for name in INVOCATION_HEADERS)


class SnapStartHooks:
    """The two hooks, over the app's settings, authenticator, database and agent source."""

    def __init__(
        self, settings: Settings, authenticator: Authenticator, database: Database, agents: Any
    ) -> None:
        self._settings = settings
        self._authenticator = authenticator
        self._database = database
        self._agents = agents

    async def before_checkpoint(self, app: ASGIApp) -> None:
        """Exercise everything heavy the app built, then close every socket."""
        await warm_request_path(app)
        agents = self._agents
        if hasattr(agents, "warm_up"):
            await agents.warm_up()
        complete_models(DEFERRED_MODEL_MODULES)
        if hasattr(agents, "close_connections"):
            await agents.close_connections()
        await release_before_snapshot(self._database)
        collect_before_snapshot()

    async def after_restore(self) -> None:
        """Reseed, let secrets and keys refresh (a Secrets Manager call runs in a thread)."""
        await asyncio.to_thread(
            refresh_after_restore, self._settings, self._authenticator, self._database
        )


async def warm_request_path(app: ASGIApp) -> int:
    """Send one unauthenticated ``POST /chatkit`` through the whole app; returns its status.

    It goes through every middleware, the router, the auth dependency and the error handlers
    and stops at the 401, before the database or the model: those first calls are paid here,
    in the init phase, instead of by a restored sandbox's first user.
    """
    body = json.dumps({"type": "threads.list", "params": {"limit": 1}}).encode()
    pending: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]
    status = 0

    async def receive() -> Message:
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/chatkit",
        "raw_path": b"/chatkit",
        "query_string": b"",
        "root_path": "",
        "server": ("127.0.0.1", 8080),
        "client": ("127.0.0.1", 0),
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"x-request-id", WARM_UP_REQUEST_ID.encode()),
        ],
    }
    await app(scope, receive, send)
    return status


def install_snapstart_routes(
    app: FastAPI, hooks: SnapStartHooks, environ: Mapping[str, str] = os.environ
) -> list[str]:
    """Add the hook routes the adapter's variables name; returns the paths added."""
    added = []
    for variable, run in (
        (BEFORE_CHECKPOINT_ENV, lambda request: hooks.before_checkpoint(request.app)),
        (AFTER_RESTORE_ENV, lambda request: hooks.after_restore()),
    ):
        path = environ.get(variable, "").strip()
        if not path:
            continue
        if not path.startswith("/"):
            raise ValueError(f"{variable} must be an absolute path, not {path!r}")
        app.add_api_route(
            path, _hook_endpoint(variable, run), methods=["POST"], include_in_schema=False
        )
        added.append(path)
    return added


def _hook_endpoint(variable: str, run: Any) -> Any:
    async def endpoint(request: Request) -> Response:
        client = request.client.host if request.client else None
        if not is_adapter_call(client, request.headers):
            logger.warning("refused a SnapStart hook call (%s) from %s", variable, client)
            return JSONResponse({"detail": "Forbidden"}, status_code=403)
        await run(request)
        logger.info("SnapStart hook done: %s", variable)
        return JSONResponse({"status": "ok"})

    return endpoint
