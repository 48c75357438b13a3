"""The playground page on the dev server: ``/`` redirects to ``/playground/``, static files only.

The page (``dev/playground/``: HTML, CSS and ES modules, no build step) talks to the APIs the way
any browser client does, over ``fetch``, so the dev server only has to hand out files. Its asset
links are relative, so the same folder works from any static server too
(``python -m http.server -d dev/playground``); hence the redirect rather than serving
``index.html`` at ``/``. The deployed functions never serve it: it is opened from the dev server
(or any static server) and pointed at the function URLs in its settings.

Only ``GET``/``HEAD`` of ``/`` and of paths under ``/playground`` are taken; every other request
goes to the wrapped app unchanged, so adding the page changes no API route.
"""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.responses import RedirectResponse
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

PLAYGROUND_DIR = Path(__file__).resolve().parent / "playground"
"""index.html, app.js, api.js, sse.js, style.css."""

PREFIX = "/playground"


class PlaygroundSite:
    """Serve the playground page in front of ``app`` (see the module docstring)."""

    def __init__(self, app: ASGIApp, directory: Path = PLAYGROUND_DIR) -> None:
        self.app = app
        # inside a Starlette app, so a missing file is a plain 404 (bare StaticFiles raises)
        self.files = Starlette(routes=[Mount(PREFIX, StaticFiles(directory=directory, html=True))])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path in ("/", PREFIX):
            query = scope.get("query_string", b"").decode("latin-1")
            target = f"{PREFIX}/" + (f"?{query}" if query else "")
            await RedirectResponse(target, status_code=307)(scope, receive, send)
        elif path.startswith(PREFIX + "/"):
            await self.files(scope, receive, send)
        else:
            await self.app(scope, receive, send)
