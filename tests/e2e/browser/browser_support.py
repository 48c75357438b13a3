"""Servers, a paced model and page helpers for the playground's real-browser tests.

* :class:`PacedOfflineModel`: the built-in offline model (so tool calls happen as for a user of
  ``make dev``), streaming each word after a delay the test sets, so a browser can watch an
  answer grow and stop it half-way.
* :func:`playground_app`: what ``dev/devserver.py``'s ``build_app`` composes (playground page,
  path router, CORS), over the test's database, JWT settings and model.
* :func:`static_site`: the page's folder alone on another port: another origin, as when the page
  is opened from any static server and pointed at the function URLs.
* ``tests.support.server_process``: ``dev/devserver.py`` itself, as ``make dev`` runs it.
* :class:`Playground`: the page, driven through its labelled controls.
"""

from __future__ import annotations

import asyncio
import json
import re
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from agents.items import TResponseStreamEvent
from chat_app.agent import AgentFactory
from chat_app.app import create_app as create_chat_app
from chat_app.offline_model import OfflineModel
from chatkit_backend.auth import build_authenticator
from chatkit_backend.db import Database
from chatkit_backend.settings import Settings
from conversations_app.api import create_app as create_conversations_app
from cors import cors
from devserver import PathRouter
from playground_site import PLAYGROUND_DIR, PlaygroundSite
from playwright.sync_api import Locator, Page, expect
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from tests.support.paths import REPO_ROOT
from tests.support.servers import UvicornThread, app_over
from tests.support.tokens import TEST_JWT_SECRET

REPO_ROOT = REPO_ROOT
ADDED_MILK = re.compile(r'Added task #\d+ "buy milk"')
"""The offline model's answer to "add a task to buy milk" (task ids are global serials)."""
WAIT_MS = 15_000
"""Upper bound of every wait on the page (a streamed answer takes a few seconds at most)."""


class PacedOfflineModel(OfflineModel):
    """The offline model with ``delay`` seconds before each streamed word (0: full speed).

    Set from the test's thread, read in the server's loop: a float assignment is atomic.
    """

    def __init__(self) -> None:
        self.delay = 0.0

    async def stream_response(
        self, *args: Any, **kwargs: Any
    ) -> AsyncIterator[TResponseStreamEvent]:
        async for event in super().stream_response(*args, **kwargs):
            if event.type == "response.output_text.delta" and self.delay:
                await asyncio.sleep(self.delay)
            yield event


def server_settings(database_url: str, cors_origins: list[str]) -> Settings:
    """JWT required (HS256 test secret), offline model, no remote tools, ``cors_origins``;
    attachment files in a temporary folder."""
    values: dict[str, Any] = {
        "data_dir": Path(tempfile.mkdtemp(prefix="ckb-playground-")),
        "database_url": database_url,
        "jwt_secret": TEST_JWT_SECRET,
        "openai_api_key": None,
        "openai_api_key_secret_arn": None,
        "openai_base_url": None,
        "mcp_servers": [],
        "cors_allow_origins": cors_origins,
    }
    return Settings(**values)


def playground_app(settings: Settings, database: Database, model: OfflineModel) -> ASGIApp:
    """The dev server's composition (see ``build_app``) with the test's model."""
    authenticator = build_authenticator(settings)
    chat = create_chat_app(
        settings=settings,
        database=database,
        authenticator=authenticator,
        agent_factory=AgentFactory(settings, database, model=model),
    )
    conversations = create_conversations_app(
        settings=settings, database=database, authenticator=authenticator
    )
    return cors(PlaygroundSite(PathRouter(chat, conversations)), settings.cors_allow_origins)


def playground_server(settings: Settings, model: OfflineModel) -> UvicornThread:
    database = Database.from_url(settings.database_url or "", settings)
    app = app_over(database, lambda db: playground_app(settings, db, model))
    return UvicornThread(app, name="playground-server")


@asynccontextmanager
async def _playground_files() -> AsyncIterator[ASGIApp]:
    yield Starlette(routes=[Mount("/", StaticFiles(directory=PLAYGROUND_DIR, html=True))])


def static_site() -> UvicornThread:
    """The playground folder served alone (no API): a second origin for the CORS tests."""
    return UvicornThread(_playground_files, lifespan="off", name="static-site")


class Playground:
    """The page, driven the way a person does: by the controls' accessible names."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.sidebar = page.get_by_role("navigation", name="Conversations")
        self.message_box = page.get_by_role("textbox", name="Message")
        self.send_button = page.get_by_role("button", name="Send", exact=True)
        self.stop_button = page.get_by_role("button", name="Stop", exact=True)
        self.messages = page.get_by_role("list", name="Messages")
        self.error = page.get_by_role("alert")

    def send(self, text: str) -> None:
        """Type ``text`` and press Enter (the keyboard path)."""
        self.message_box.fill(text)
        self.message_box.press("Enter")

    def answers(self) -> Locator:
        return self.messages.locator(".message.assistant:not(.pending)")

    def last_answer(self) -> Locator:
        return self.answers().last

    def wait_answered(self) -> None:
        """Wait until the turn has ended (the Stop button is disabled again)."""
        expect(self.stop_button).to_be_disabled(timeout=WAIT_MS)
        expect(self.messages.locator(".pending")).to_have_count(0, timeout=WAIT_MS)

    def tool_cards(self, name: str | None = None) -> Locator:
        """The turns' tool workflow blocks (one per turn), those with a call of ``name``."""
        cards = self.messages.locator(".message.tool")
        return cards.filter(has=self.page.locator(".tool-name", has_text=name)) if name else cards

    def tool_tasks(self, workflow: Locator) -> Locator:
        """The task rows of one workflow block, one per tool call."""
        return workflow.locator(".tool-task")

    def conversation_link(self, title: str) -> Locator:
        return self.sidebar.get_by_role("link").filter(has_text=title)

    def conversation_titles(self) -> list[str]:
        return [t.strip() for t in self.sidebar.locator(".conversation-title").all_inner_texts()]

    def open_settings(self) -> None:
        self.page.get_by_role("button", name="Settings").click()

    def configure(
        self, *, chat_url: str | None = None, crud_url: str | None = None, token: str | None = None
    ) -> None:
        """Fill the settings dialog and save it."""
        self.open_settings()
        dialog = self.page.get_by_role("dialog", name="Settings")
        if chat_url is not None:
            dialog.get_by_label("Chat function URL").fill(chat_url)
        if crud_url is not None:
            dialog.get_by_label("Conversations function URL").fill(crud_url)
        if token is not None:
            dialog.get_by_label("Bearer token (JWT)").fill(token)
        dialog.get_by_role("button", name="Save").click()
        expect(dialog).to_be_hidden(timeout=WAIT_MS)


OpenPlayground = Callable[..., Playground]
"""The ``open_playground`` fixture: open the page at a URL, optionally with stored settings."""


def api_get(url: str, token: str | None) -> Any:
    """GET a JSON route as the test's user (outside the browser: what the server stored)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.get(url, headers=headers, timeout=10)
    response.raise_for_status()
    return json.loads(response.content)
