"""SnapStart hooks of the conversations function, through the runtime's ``snapshot_restore_py``.

The managed Python runtime ships ``snapshot_restore_py`` (it is not on the import path anywhere
else): functions registered with ``register_before_snapshot`` run once, after the init phase and
before the snapshot; those registered with ``register_after_restore`` run in every sandbox restored
from it, before its first invocation. Outside Lambda (tests, the local server, a stage without
SnapStart) :class:`LocalHooks` stands in: it records the registrations so tests and the benchmark
can play the runtime's part with :meth:`LocalHooks.run_before_snapshot` and
:meth:`LocalHooks.run_after_restore`. Without SnapStart the runtime never calls the hooks, so
registering them costs nothing.

Before the snapshot: one unauthenticated invocation runs the whole request path (Mangum, the
Powertools context, middleware, routing, the auth dependency) up to its 401, without touching the
database, and is then forgotten by the logger's cold-start flag (the function loads no pydantic
models with deferred schemas: its own are complete at import); then the database pool is closed
on Mangum's event loop, the loop its connections belong to, and the heap is collected once.
After a restore: :func:`chatkit_backend.snapstart.refresh_after_restore`
(reseed ``random``, clear cached secrets, let the JWKS and the JWT secret refresh); the pool
reconnects on first use.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from typing import Any

from chatkit_backend.auth import Authenticator
from chatkit_backend.db import Database
from chatkit_backend.init_phase import collect_before_snapshot
from chatkit_backend.settings import Settings
from chatkit_backend.snapstart import refresh_after_restore, release_before_snapshot

Hook = Callable[[], Any]
Handler = Callable[[dict[str, Any], Any], dict[str, Any]]

WARM_UP_REQUEST_ID = "snapstart-warm-up"


class LocalHooks:
    """The runtime's hook registry where the runtime is absent: records, runs on demand."""

    def __init__(self) -> None:
        self.before_snapshot: list[Hook] = []
        self.after_restore: list[Hook] = []

    def register_before_snapshot(self, hook: Hook) -> Hook:
        self.before_snapshot.append(hook)
        return hook

    def register_after_restore(self, hook: Hook) -> Hook:
        self.after_restore.append(hook)
        return hook

    def run_before_snapshot(self) -> None:
        for hook in self.before_snapshot:
            hook()

    def run_after_restore(self) -> None:
        for hook in self.after_restore:
            hook()


local_hooks = LocalHooks()

try:  # the module exists only in the Lambda runtime
    from snapshot_restore_py import (  # type: ignore[import-not-found,unused-ignore]
        register_after_restore,
        register_before_snapshot,
    )
except ImportError:
    register_before_snapshot = local_hooks.register_before_snapshot
    register_after_restore = local_hooks.register_after_restore


class WarmUpContext:
    """The Lambda context of the warm-up invocation (what the Powertools logger reads)."""

    function_name = "snapstart-warm-up"
    function_version = "$LATEST"
    memory_limit_in_mb = 0
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:snapstart-warm-up"
    aws_request_id = WARM_UP_REQUEST_ID


def warm_up_event() -> dict[str, Any]:
    """A function URL event (payload 2.0) for ``GET /api/conversations`` without a token."""
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/api/conversations",
        "rawQueryString": "limit=1",
        "headers": {"accept": "application/json", "host": "localhost"},
        "queryStringParameters": {"limit": "1"},
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "local",
            "domainName": "localhost",
            "domainPrefix": "localhost",
            "http": {
                "method": "GET",
                "path": "/api/conversations",
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": WARM_UP_REQUEST_ID,
            },
            "requestId": WARM_UP_REQUEST_ID,
            "routeKey": "$default",
            "stage": "$default",
            "time": "01/Jan/2026:00:00:00 +0000",
            "timeEpoch": 0,
        },
        "isBase64Encoded": False,
    }


def register_hooks(
    handler: Handler, database: Database, settings: Settings, authenticator: Authenticator
) -> tuple[Hook, Hook]:
    """Register this function's two hooks with the runtime (or :data:`local_hooks`)."""

    def before_snapshot() -> None:
        reply = handler(warm_up_event(), WarmUpContext())
        if reply.get("statusCode") != 401:
            raise RuntimeError(f"warm-up invocation answered {reply.get('statusCode')}, not 401")
        forget_warm_up_invocation()
        mangum_loop().run_until_complete(release_before_snapshot(database))
        collect_before_snapshot()

    def after_restore() -> None:
        refresh_after_restore(settings, authenticator, database)

    register_before_snapshot(before_snapshot)
    register_after_restore(after_restore)
    return before_snapshot, after_restore


def forget_warm_up_invocation() -> None:
    """Let the first real invocation of a restored sandbox log ``cold_start: true`` again.

    The Powertools logger flips a module flag on the first invocation it sees, which would be the
    warm-up. The flag has no public setter; it is reset only if the logger module is loaded.
    """
    powertools_logger = sys.modules.get("aws_lambda_powertools.logging.logger")
    if powertools_logger is not None:
        setattr(powertools_logger, "is_cold_start", True)  # noqa: B010 (no typed attribute)


def mangum_loop() -> asyncio.AbstractEventLoop:
    """The event loop Mangum runs every invocation on (it set it as the thread's loop)."""
    return asyncio.get_event_loop_policy().get_event_loop()
