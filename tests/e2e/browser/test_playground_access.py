"""Who may call the APIs from the playground: bearer tokens, and pages on another origin (CORS).

Also the real ``dev/devserver.py`` process (``make dev`` without JWT settings: the development
user, no token), where the README's screenshot is taken.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.browser.browser_support import ADDED_MILK, WAIT_MS, OpenPlayground, api_get
from tests.support.databases import scratch_database
from tests.support.server_process import DevServerProcess
from tests.support.servers import UvicornThread

SCREENSHOT_ENV = "PLAYGROUND_SCREENSHOT"
"""Set to a path (``docs/playground.png``) to keep the screenshot the dev-server test takes."""


def test_without_a_token_the_401_is_shown_then_a_token_in_settings_works(
    server: UvicornThread, open_playground: OpenPlayground, token: str
) -> None:
    playground = open_playground(server.url)
    expect(playground.error).to_contain_text("Not signed in", timeout=WAIT_MS)
    expect(playground.error).to_contain_text("Set a bearer token in Settings")
    expect(playground.page.get_by_text("no token")).to_be_visible()

    playground.send("add a task to buy milk")
    expect(playground.error).to_contain_text("Not signed in")
    # refused before anything was stored: the text is given back to retry
    expect(playground.message_box).to_have_value("add a task to buy milk")
    expect(playground.messages.locator(".message")).to_have_count(0)

    playground.configure(token=token)
    expect(playground.error).to_be_hidden()
    expect(playground.sidebar).to_contain_text("No conversations yet.")
    playground.send_button.click()
    playground.wait_answered()
    expect(playground.tool_cards("add_task")).to_have_count(1)
    expect(playground.conversation_link("add a task to buy milk")).to_have_count(1)

    # the token is kept in localStorage: a reload is still signed in
    playground.page.reload()
    expect(playground.conversation_link("add a task to buy milk")).to_have_count(1)
    expect(playground.page.get_by_text("token set")).to_be_visible()

    playground.configure(token="not-a-jwt")
    expect(playground.error).to_contain_text("Not signed in")


def test_page_on_another_origin_uses_the_api_through_cors(
    server: UvicornThread, page_origin: UvicornThread, open_playground: OpenPlayground, token: str
) -> None:
    playground = open_playground(page_origin.url)
    playground.configure(chat_url=server.url, crud_url=server.url, token=token)
    expect(playground.page.get_by_text(f"127.0.0.1:{server.port}")).to_be_visible()
    playground.send("add a task to buy milk")
    playground.wait_answered()
    expect(playground.tool_cards("add_task")).to_have_count(1)
    expect(playground.last_answer()).to_contain_text(ADDED_MILK)
    expect(playground.error).to_be_hidden()

    # X-Thread-Id is readable cross-origin: the page adopted the new conversation's id
    listed = api_get(f"{server.url}/api/conversations", token)["conversations"]
    assert len(listed) == 1
    assert playground.page.evaluate("location.hash") == f"#c={listed[0]['id']}"
    expect(playground.conversation_link("add a task to buy milk")).to_have_count(1)
    playground.conversation_link("add a task to buy milk").click()
    playground.sidebar.get_by_role("button", name="Rename add a task to buy milk").click()
    playground.sidebar.get_by_role("textbox", name="New title").fill("Milk")
    playground.sidebar.get_by_role("textbox", name="New title").press("Enter")  # PATCH preflight
    expect(playground.conversation_link("Milk")).to_have_count(1)
    assert api_get(f"{server.url}/api/conversations", token)["conversations"][0]["title"] == "Milk"


def test_origin_not_allowed_by_cors_is_reported(
    server: UvicornThread,
    foreign_origin: UvicornThread,
    open_playground: OpenPlayground,
    token: str,
) -> None:
    playground = open_playground(foreign_origin.url)
    playground.configure(chat_url=server.url, crud_url=server.url, token=token)
    expect(playground.error).to_contain_text(f"Could not reach {server.url}")
    expect(playground.error).to_contain_text("(CORS)")
    playground.send("add a task to buy milk")
    expect(playground.error).to_contain_text(f"Could not reach {server.url}")
    playground.wait_answered()
    assert api_get(f"{server.url}/api/conversations", token)["conversations"] == []


@pytest.fixture
def dev_server(tmp_path: Path) -> Iterator[DevServerProcess]:
    """``dev/devserver.py`` on a PostgreSQL database of its own, no JWT settings (dev user)."""
    with scratch_database("ckb_browser") as url:
        server = DevServerProcess({"DATABASE_URL": url}, tmp_path / "devserver.log")
        try:
            server.wait_ready()
            yield server
        finally:
            server.stop()


def test_make_dev_serves_the_playground_for_the_dev_user(
    dev_server: DevServerProcess, open_playground: OpenPlayground, tmp_path: Path
) -> None:
    playground = open_playground(dev_server.url)
    assert playground.page.url == f"{dev_server.url}/playground/"
    expect(playground.page).to_have_title("ChatKit backend playground")
    expect(playground.message_box).to_be_focused()
    playground.send("add a task to buy milk")
    playground.wait_answered()
    playground.send("add a task to book the dentist")
    playground.wait_answered()
    playground.message_box.press_sequentially("list my")
    playground.message_box.press("Shift+Enter")  # a new line, not a send
    playground.message_box.press_sequentially("tasks")
    expect(playground.message_box).to_have_value("list my\ntasks")
    expect(playground.messages.locator(".message.user")).to_have_count(2)
    playground.message_box.fill("list my tasks")
    playground.message_box.press("Enter")
    playground.wait_answered()
    expect(playground.tool_cards("list_tasks")).to_have_count(1)
    expect(playground.last_answer()).to_contain_text("buy milk")
    expect(playground.last_answer()).to_contain_text("book the dentist")
    expect(playground.conversation_link("add a task to buy milk")).to_have_count(1)
    expect(playground.error).to_be_hidden()

    playground.messages.locator(".message.tool").last.scroll_into_view_if_needed()
    playground.page.locator("#message-scroller").evaluate("s => s.scrollTo(0, s.scrollHeight)")
    shot = tmp_path / "playground.png"
    playground.page.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000
    if keep := os.environ.get(SCREENSHOT_ENV):
        Path(keep).write_bytes(shot.read_bytes())

    # narrow screen: the sidebar folds behind a labelled toggle
    playground.page.set_viewport_size({"width": 390, "height": 760})
    toggle = playground.page.get_by_role("button", name="Conversations")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    toggle.click()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    playground.page.get_by_role("button", name="New chat").click()
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(playground.message_box).to_be_focused()
