"""The todo widgets in the playground (Chromium): the task list the offline model's "list my tasks"
answers with, its complete button and checkbox sent as ChatKit widget actions, the widget updated
in place, and the same state after a reload and in the next listing.
"""

from __future__ import annotations

from playwright.sync_api import Locator, expect

from tests.e2e.browser.browser_support import WAIT_MS, OpenPlayground, Playground, api_get
from tests.support.servers import UvicornThread


def task_list(playground: Playground) -> Locator:
    """The newest task-list widget on the page."""
    return playground.messages.locator('.message.widget .w-Card[data-key="task-list"]').last


def row(widget: Locator, title: str) -> Locator:
    return widget.locator('.w-Row[data-key^="task-"]').filter(has_text=title)


def say(playground: Playground, text: str) -> None:
    playground.send(text)
    playground.wait_answered()


def test_task_list_widget_complete_in_place_survives_a_reload(
    server: UvicornThread, open_playground: OpenPlayground, token: str
) -> None:
    playground = open_playground(server.url, settings={"token": token})
    say(playground, "add a task to buy milk")
    expect(playground.messages.locator(".message.widget")).to_have_count(1)  # the task card
    say(playground, "add a task to call mom")
    say(playground, "list my tasks")

    widget = task_list(playground)
    expect(widget.locator(".w-Title")).to_have_text("Tasks")
    milk = row(widget, "buy milk")
    expect(milk).to_have_count(1)
    expect(row(widget, "call mom")).to_have_count(1)
    expect(milk.get_by_role("checkbox")).not_to_be_checked()

    milk.get_by_role("button", name="Complete").click()

    expect(milk.locator(".w-done")).to_have_text("buy milk", timeout=WAIT_MS)
    expect(milk.get_by_role("checkbox")).to_be_checked()
    expect(milk.get_by_role("button", name="Complete")).to_have_count(0)
    expect(playground.page.get_by_role("status")).to_contain_text("Tasks changed")
    expect(playground.last_answer()).to_contain_text('"buy milk" marked as done.')
    conversation_id = playground.page.evaluate("location.hash").removeprefix("#c=")
    stored = api_get(f"{server.url}/api/conversations/{conversation_id}", token)
    widgets = [m for m in stored["messages"] if m["role"] == "widget"]
    assert 'buy milk" (done)' in widgets[-1]["content"]

    playground.page.reload()
    widget = task_list(playground)
    milk = row(widget, "buy milk")
    expect(milk.locator(".w-done")).to_have_text("buy milk", timeout=WAIT_MS)
    expect(milk.get_by_role("checkbox")).to_be_checked()

    say(playground, "list my tasks")  # open tasks only
    latest = task_list(playground)
    expect(row(latest, "call mom")).to_have_count(1)
    expect(row(latest, "buy milk")).to_have_count(0)
    say(playground, "list all my tasks")
    everything = task_list(playground)
    expect(row(everything, "buy milk").get_by_role("checkbox")).to_be_checked()

    # The checkbox is a sync action: unticking reopens the task in place.
    row(everything, "buy milk").get_by_role("checkbox").uncheck()
    expect(row(everything, "buy milk").locator(".w-done")).to_have_count(0, timeout=WAIT_MS)
    expect(row(everything, "buy milk").get_by_role("button", name="Complete")).to_have_count(1)
