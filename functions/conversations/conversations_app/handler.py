"""Lambda entry point of the conversations function (function URL, payload format 2.0).

Everything at module scope runs once per sandbox (the init phase) and is reused by every warm
invocation: the settings, the authenticator (a deployed function refuses to start without JWT
settings), the database engine with its tiny pool, and the app. Mangum runs each invocation on
one event loop that it keeps for the life of the process, so pooled connections stay valid
across invocations. Responses are buffered, which is right for small JSON answers.

Observability is wired here once: the Powertools logger adds the Lambda context (function,
request id, cold start) to every line, the request middleware adds the user id and flushes the
metrics. The X-Ray tracer is a heavy import, so it wraps the handler only when the
function actually has active tracing (Lambda then provides ``AWS_XRAY_DAEMON_ADDRESS``) and
``POWERTOOLS_TRACE_DISABLED`` does not switch it off.

The init phase runs with the garbage collector paused (:mod:`chatkit_backend.init_phase`: it
would walk the growing heap over and over and find almost nothing to free).

SnapStart: the runtime's before-snapshot / after-restore hooks are registered at the end of this
module (:mod:`conversations_app.snapstart`); without SnapStart they never run.
"""

from __future__ import annotations

import os
from typing import Any

from chatkit_backend.init_phase import init_phase

with init_phase():  # the collector pauses while the libraries load and the app is built
    from chatkit_backend import observability
    from chatkit_backend.auth import build_authenticator
    from chatkit_backend.db import get_database
    from chatkit_backend.settings import get_settings
    from mangum import Mangum

    from conversations_app.api import create_app
    from conversations_app.snapstart import register_hooks

    settings = get_settings()
    database = get_database()
    authenticator = build_authenticator(settings)
    app = create_app(authenticator=authenticator, database=database, settings=settings)
    asgi_handler = Mangum(app, lifespan="off")


def tracing_enabled() -> bool:
    disabled = os.environ.get("POWERTOOLS_TRACE_DISABLED", "").lower() in ("1", "true", "yes")
    return bool(os.environ.get("AWS_XRAY_DAEMON_ADDRESS")) and not disabled


def _wire(function: Any) -> Any:
    """Powertools on the handler: the Lambda context in every log line, and X-Ray if active."""
    wrapped = observability.logger.inject_lambda_context(function)
    if tracing_enabled():
        wrapped = observability.tracer.capture_lambda_handler(wrapped, capture_response=False)
    return wrapped


@_wire
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The function URL event in, the function URL response out."""
    return asgi_handler(event, context)


before_snapshot, after_restore = register_hooks(handler, database, settings, authenticator)
"""SnapStart hooks (:mod:`conversations_app.snapstart`); only SnapStart ever calls them."""
