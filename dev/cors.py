"""CORS for the local dev server, so a page on another origin can call it with a bearer token.

Deployed, the function URLs answer CORS themselves (``template.yaml``); the function apps never
add it. Credentials (cookies) are not allowed: auth is the ``Authorization`` header.
``X-Thread-Id`` is exposed so a browser client of the simple SSE protocol can read a new
thread's id.
"""

from __future__ import annotations

from collections.abc import Sequence

from chatkit_backend.web import REQUEST_ID_HEADER, THREAD_ID_HEADER
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp


def cors(app: ASGIApp, origins: Sequence[str]) -> ASGIApp:
    """``app`` wrapped to allow browsers on ``origins``; unchanged when there are none."""
    if not origins:
        return app
    return CORSMiddleware(
        app,
        allow_origins=list(origins),
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],  # PUT: uploads
        allow_headers=["Authorization", "Content-Type"],
        expose_headers=[THREAD_ID_HEADER, REQUEST_ID_HEADER],
        max_age=600,
    )
