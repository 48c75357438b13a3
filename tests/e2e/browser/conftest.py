"""Fixtures of the browser tests: Debian's Chromium under Playwright, the servers, a page per test.

Chromium: ``CHROMIUM_PATH`` or ``/usr/bin/chromium`` (``scripts/ensure-browser.sh`` installs it;
Playwright's own browser download needs a CDN that is out of reach). When it is missing the tests
skip with the reason, except in CI (``CI`` set), where a missing browser is a failure.

Servers (one each for the session): the dev server's composition with JWT required and a paced
offline model (:func:`browser_support.playground_server`), and two static sites serving only the
page, one of them an allowed CORS origin of that server and one not. Every test signs in as a
fresh user, so its sidebar starts empty whatever the other tests stored.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from agents import set_tracing_disabled
from playwright.sync_api import Browser, Page, sync_playwright

from tests.e2e.browser.browser_support import (
    WAIT_MS,
    OpenPlayground,
    PacedOfflineModel,
    Playground,
    playground_server,
    server_settings,
    static_site,
)
from tests.support.servers import UvicornThread
from tests.support.tokens import mint_hs256

DEFAULT_CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = os.environ.get("CHROMIUM_PATH", DEFAULT_CHROMIUM)
    if Path(path).is_file() and os.access(path, os.X_OK):
        return path
    reason = f"no Chromium at {path}: run scripts/ensure-browser.sh (apt-get install chromium)"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; in CI the browser tests must run")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[Browser]:
    """One Chromium per test module. Not per session: Playwright's sync API holds an event loop
    in the main thread while it runs, and pytest-asyncio cannot run the async tests of other
    modules under it."""
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_path, timeout=WAIT_MS * 2)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="session")
def paced_model() -> PacedOfflineModel:
    set_tracing_disabled(True)
    return PacedOfflineModel()


@pytest.fixture(autouse=True)
def _full_speed(paced_model: PacedOfflineModel) -> Iterator[None]:
    """Each test starts with the model at full speed, and leaves it so."""
    paced_model.delay = 0.0
    yield
    paced_model.delay = 0.0


@pytest.fixture(scope="session")
def page_origin() -> Iterator[UvicornThread]:
    """The page alone on another origin, allowed by the API server's CORS settings."""
    with static_site() as site:
        yield site


@pytest.fixture(scope="session")
def foreign_origin() -> Iterator[UvicornThread]:
    """The page alone on an origin the API server does not allow."""
    with static_site() as site:
        yield site


@pytest.fixture(scope="session")
def server(
    pg_url: str, paced_model: PacedOfflineModel, page_origin: UvicornThread
) -> Iterator[UvicornThread]:
    settings = server_settings(pg_url, cors_origins=[page_origin.url])
    with playground_server(settings, paced_model) as running:
        yield running


@pytest.fixture
def token() -> str:
    """A bearer token for a user of this test alone."""
    return mint_hs256(f"browser-{secrets.token_hex(6)}")


@pytest.fixture
def open_playground(browser: Browser) -> Iterator[OpenPlayground]:
    """Open the page at ``url`` in a fresh browser context (own localStorage).

    ``settings``: stored before the page's scripts run, as a returning user would have them.
    After the test, any uncaught script error on the page fails it.
    """
    contexts = []
    errors: list[str] = []

    def open_page(
        url: str, *, settings: dict[str, str] | None = None, width: int = 1280, height: int = 800
    ) -> Playground:
        context = browser.new_context(viewport={"width": width, "height": height})
        contexts.append(context)
        if settings is not None:
            stored = json.dumps(json.dumps(settings))
            context.add_init_script(
                f"localStorage.setItem('chatkit-playground.settings', {stored});"
            )
        page: Page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(url, timeout=WAIT_MS)
        return Playground(page)

    yield open_page
    for context in contexts:
        context.close()
    assert not errors, f"script errors on the page: {errors}"


@pytest.fixture
def playground(open_playground: OpenPlayground, server: UvicornThread, token: str) -> Playground:
    """The playground of ``server``, signed in as this test's user (``token``)."""
    return open_playground(server.url, settings={"token": token})
