"""The playground's sidebar in Chromium: find, open, continue, rename, delete, page by cursor."""

from __future__ import annotations

import httpx
from playwright.sync_api import Request, expect

from tests.e2e.browser.browser_support import (
    ADDED_MILK,
    WAIT_MS,
    OpenPlayground,
    Playground,
    api_get,
)
from tests.support.servers import UvicornThread


def test_reload_find_open_and_continue_a_conversation(
    server: UvicornThread, open_playground: OpenPlayground, token: str
) -> None:
    playground = open_playground(server.url, settings={"token": token})
    expect(playground.sidebar).to_contain_text("No conversations yet.")
    playground.send("add a task to buy milk")
    playground.wait_answered()
    expect(playground.conversation_link("add a task to buy milk")).to_have_count(1)

    playground.page.goto(server.url)  # a fresh load, no conversation open
    expect(playground.page.get_by_role("heading", name="New chat")).to_be_visible()
    expect(playground.messages.locator(".message")).to_have_count(0)
    link = playground.conversation_link("add a task to buy milk")
    link.click()
    expect(link).to_have_attribute("aria-current", "page")
    expect(playground.page.get_by_role("heading", name="add a task to buy milk")).to_be_visible()
    expect(playground.messages.locator(".message.user")).to_have_text(["add a task to buy milk"])
    expect(playground.tool_cards("add_task")).to_have_count(1)
    expect(playground.last_answer()).to_contain_text(ADDED_MILK)

    playground.send("list my tasks")
    playground.wait_answered()
    expect(playground.tool_cards("list_tasks")).to_have_count(1)
    expect(playground.last_answer()).to_contain_text("buy milk")

    listed = api_get(f"{server.url}/api/conversations", token)["conversations"]
    assert len(listed) == 1, listed
    stored = api_get(f"{server.url}/api/conversations/{listed[0]['id']}", token)["messages"]
    assert [m["content"] for m in stored if m["role"] == "user"] == [
        "add a task to buy milk",
        "list my tasks",
    ]
    assert playground.conversation_titles() == ["add a task to buy milk"]


def test_rename_and_delete_with_confirmation(
    server: UvicornThread, open_playground: OpenPlayground, token: str
) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    for title in ("Groceries", "Holiday plans"):
        created = httpx.post(
            f"{server.url}/api/conversations", json={"title": title}, headers=headers, timeout=10
        )
        assert created.status_code == 201, created.text
    playground = open_playground(server.url, settings={"token": token})
    expect(playground.sidebar.locator(".conversation-title")).to_have_text(
        ["Holiday plans", "Groceries"]
    )

    playground.sidebar.get_by_role("button", name="Rename Groceries").click()
    title_box = playground.sidebar.get_by_role("textbox", name="New title")
    expect(title_box).to_be_focused()
    expect(title_box).to_have_value("Groceries")
    title_box.fill("Weekly groceries")
    title_box.press("Enter")
    # renamed, and moved to the top as the API orders it
    expect(playground.sidebar.locator(".conversation-title")).to_have_text(
        ["Weekly groceries", "Holiday plans"]
    )
    titles = [
        c["title"] for c in api_get(f"{server.url}/api/conversations", token)["conversations"]
    ]
    assert titles == ["Weekly groceries", "Holiday plans"]

    playground.sidebar.get_by_role("button", name="Rename Holiday plans").click()
    playground.sidebar.get_by_role("textbox", name="New title").fill("Not saved")
    playground.sidebar.get_by_role("textbox", name="New title").press("Escape")
    expect(playground.conversation_link("Holiday plans")).to_have_count(1)

    dialog = playground.page.get_by_role("dialog", name="Delete conversation?")
    playground.sidebar.get_by_role("button", name="Delete Holiday plans").click()
    expect(dialog).to_contain_text("“Holiday plans” and all its messages will be deleted.")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    expect(playground.conversation_link("Holiday plans")).to_have_count(1)

    playground.sidebar.get_by_role("button", name="Delete Holiday plans").click()
    dialog.get_by_role("button", name="Delete").click()
    expect(playground.conversation_link("Holiday plans")).to_have_count(0)
    listed = api_get(f"{server.url}/api/conversations", token)["conversations"]
    assert [c["title"] for c in listed] == ["Weekly groceries"]

    playground.page.reload()
    expect(playground.sidebar.locator(".conversation-title")).to_have_text(["Weekly groceries"])


def test_deleting_the_open_conversation_starts_a_new_chat(
    server: UvicornThread, playground: Playground, token: str
) -> None:
    playground.send("add a task to call mum")
    playground.wait_answered()
    playground.sidebar.get_by_role("button", name="Delete add a task to call mum").click()
    playground.page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(playground.page.get_by_role("heading", name="New chat")).to_be_visible()
    expect(playground.messages.locator(".message")).to_have_count(0)
    assert playground.page.evaluate("location.hash") == ""
    assert api_get(f"{server.url}/api/conversations", token)["conversations"] == []


def test_sidebar_and_messages_page_by_cursor_as_you_scroll(
    server: UvicornThread, open_playground: OpenPlayground, token: str
) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=10) as client:
        for number in range(1, 26):
            client.post("/api/conversations", json={"title": f"Topic {number:02d}"})
    playground = open_playground(
        f"{server.url}/playground/?conversations_page=10&messages_page=2",
        settings={"token": token},
        height=700,
    )
    requests: list[str] = []
    playground.page.on("request", lambda request: _record(request, requests))
    titles = playground.sidebar.locator(".conversation-title")
    # the first pages fill the visible list, then loading waits for the user to scroll
    expect(titles).to_have_count(20, timeout=WAIT_MS)
    expect(playground.sidebar.get_by_role("button", name="Load more conversations")).to_be_visible()
    playground.page.wait_for_timeout(300)
    expect(titles).to_have_count(20)

    playground.sidebar.locator(".conversation-scroller").evaluate(
        "s => s.scrollTo(0, s.scrollHeight)"
    )
    expect(titles).to_have_count(25, timeout=WAIT_MS)
    assert playground.conversation_titles() == [f"Topic {n:02d}" for n in range(25, 0, -1)]
    expect(playground.sidebar.get_by_role("button", name="Load more conversations")).to_be_hidden()
    assert any("after=" in url for url in requests), requests

    # a conversation of 8 messages, opened with pages of 2: every page arrives, in order, as the
    # user scrolls down (the widgets make it taller than the window)
    playground.send("add a task to buy milk")
    playground.wait_answered()
    playground.send("list my tasks")
    playground.wait_answered()
    thread_id = playground.page.evaluate("location.hash").removeprefix("#c=")
    stored = api_get(f"{server.url}/api/conversations/{thread_id}?limit=100", token)["messages"]
    playground.page.goto(f"{server.url}/playground/?messages_page=2#c={thread_id}")
    shown = playground.messages.locator(".message")
    scroller = playground.page.locator("#message-scroller")
    for _ in range(20):
        if shown.count() == _shown_count(stored):
            break
        scroller.evaluate("s => s.scrollTo(0, s.scrollHeight)")
        playground.page.wait_for_timeout(150)
    expect(shown).to_have_count(_shown_count(stored), timeout=WAIT_MS)
    expect(playground.messages.locator(".message.user")).to_have_text(
        ["add a task to buy milk", "list my tasks"]
    )
    message_pages = [url for url in requests if "/messages?" in url]
    assert len(message_pages) >= 2, message_pages


def _record(request: Request, into: list[str]) -> None:
    if "/api/conversations" in request.url:
        into.append(request.url)


def _shown_count(messages: list[dict[str, object]]) -> int:
    """How many entries the page shows: one per user/assistant/widget message, one workflow block
    per turn with tool calls (its tool messages share it)."""
    count = 0
    in_workflow = False
    for message in messages:
        if message["role"] == "user":
            in_workflow = False
        if message["role"] == "tool":
            count += 0 if in_workflow else 1
            in_workflow = True
        else:
            count += 1
    return count
