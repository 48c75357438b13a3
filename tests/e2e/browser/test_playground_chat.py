"""The playground's chat view in Chromium: streaming as it arrives, tool calls, Stop.

The server is the dev server's composition over PostgreSQL with the offline model, paced where a
test must watch the answer grow (see ``browser_support``).
"""

from __future__ import annotations

import itertools
import re
import time

from playwright.sync_api import expect

from tests.e2e.browser.browser_support import (
    ADDED_MILK,
    WAIT_MS,
    OpenPlayground,
    PacedOfflineModel,
    Playground,
    api_get,
)
from tests.support.servers import UvicornThread

HELP_PROMPT = "what can you do for me today?"
"""Not a todo request: the offline model answers with its ~60-word help text (no tool call)."""


def test_answer_grows_on_screen_before_the_stream_ends(
    playground: Playground, paced_model: PacedOfflineModel
) -> None:
    """Token by token: several growing prefixes are seen while the answer is still streaming."""
    paced_model.delay = 0.06
    playground.send(HELP_PROMPT)

    answer = playground.last_answer()
    expect(answer).to_have_attribute("data-state", "streaming", timeout=WAIT_MS)
    expect(playground.stop_button).to_be_enabled()
    seen: list[str] = []
    deadline = time.monotonic() + WAIT_MS / 1000
    while time.monotonic() < deadline:
        text, state = answer.evaluate(
            "m => [m.querySelector('.bubble').textContent, m.dataset.state]"
        )
        if state != "streaming":
            break
        if text and (not seen or text != seen[-1]):
            seen.append(text)
        playground.page.wait_for_timeout(40)
    playground.wait_answered()

    final = answer.locator(".bubble").inner_text()
    assert len(seen) >= 4, seen
    for shorter, longer in itertools.pairwise(seen):
        assert longer.startswith(shorter), (shorter, longer)
        assert len(longer) > len(shorter), (shorter, longer)
    assert final.startswith(seen[-1])
    assert len(final) > len(seen[0])
    assert final.startswith("(Offline model)")
    assert HELP_PROMPT in final  # the offline model echoes the request at the very end
    expect(answer).to_have_attribute("data-state", "done")
    expect(playground.message_box).to_be_focused()
    expect(playground.message_box).to_have_value("")


def test_tool_call_shows_its_arguments_and_result(playground: Playground) -> None:
    playground.send("add a task to buy milk")
    playground.wait_answered()

    card = playground.tool_cards("add_task")
    expect(card).to_have_count(1)
    expect(card).to_have_attribute("data-status", "done")
    expect(card.locator(".tool-arguments")).to_contain_text('"title": "buy milk"')
    expect(card.locator(".tool-result")).to_contain_text('"title": "buy milk"')
    expect(card.locator(".tool-result")).to_contain_text('"completed": false')
    expect(playground.last_answer()).to_contain_text(ADDED_MILK)
    # the user's message, the tool call, its widget, then the answer: in the order they happened
    roles = playground.messages.locator(".message").evaluate_all(
        "ms => ms.map(m => m.classList[1])"
    )
    assert roles == ["user", "tool", "widget", "assistant"], roles
    expect(playground.error).to_be_hidden()


RECORD_TASK_STATUSES = """list => {
    window.taskStatuses = [];
    new MutationObserver((records) => {
        for (const r of records) {
            if (r.target.classList.contains("tool-task")) window.taskStatuses.push(r.oldValue);
        }
    }).observe(list, { subtree: true, attributeFilter: ["data-status"], attributeOldValue: true });
}"""
"""Record every status a task row leaves (``null`` when it is first set)."""


def test_a_turn_with_two_tool_calls_is_one_workflow_live_and_after_a_reload(
    server: UvicornThread, open_playground: OpenPlayground, token: str
) -> None:
    """Asked to "complete buy milk", the offline model lists the tasks, then completes the match:
    two calls of one turn, one block with a task row each, each running until its result."""
    playground = open_playground(server.url, settings={"token": token})
    playground.send("add a task to buy milk")
    playground.wait_answered()
    playground.messages.evaluate(RECORD_TASK_STATUSES)
    playground.send("complete buy milk")
    playground.wait_answered()
    expect(playground.last_answer()).to_contain_text('"buy milk" as done')

    def assert_one_workflow_of_two_tasks() -> None:
        workflows = playground.tool_cards()
        expect(workflows).to_have_count(2, timeout=WAIT_MS)  # one per turn with tool calls
        workflow = workflows.last
        tasks = playground.tool_tasks(workflow)
        expect(tasks.locator(".tool-name")).to_have_text(["list_tasks", "complete_task"])
        expect(tasks.locator(".badge")).to_have_text(["done", "done"])
        statuses = tasks.evaluate_all("rows => rows.map(row => row.dataset.status)")
        assert statuses == ["done", "done"], statuses
        expect(workflow).to_have_attribute("data-status", "done")
        expect(workflow.locator("summary").first).to_contain_text("Used 2 tools")
        expect(tasks.locator(".tool-summary")).to_have_text(
            ["include_completed: false", re.compile(r"^task_id: \d+$")]
        )
        expect(tasks.last.locator(".tool-result")).to_contain_text('"completed": true')
        expect(playground.tool_tasks(workflows.first).locator(".tool-name")).to_have_text(
            ["add_task"]
        )

    assert_one_workflow_of_two_tasks()
    # live, each row was running before its result came (new rows start running)
    statuses = playground.page.evaluate("window.taskStatuses")
    assert statuses == [None, "running", None, "running"], statuses

    playground.page.reload()
    expect(playground.messages.locator(".message.user")).to_have_count(2, timeout=WAIT_MS)
    assert_one_workflow_of_two_tasks()
    workflow = playground.tool_cards().last
    workflow.locator("summary").first.click()  # the block folds away
    expect(playground.tool_tasks(workflow).first).to_be_hidden()


def test_stop_keeps_the_partial_answer_here_and_on_the_server(
    server: UvicornThread, playground: Playground, token: str, paced_model: PacedOfflineModel
) -> None:
    paced_model.delay = 0.25
    playground.send(HELP_PROMPT)
    answer = playground.last_answer()
    expect(answer.locator(".bubble")).to_contain_text("built-in", timeout=WAIT_MS)

    playground.stop_button.click()
    expect(answer).to_have_attribute("data-state", "stopped", timeout=WAIT_MS)
    expect(playground.messages).to_contain_text("Stopped. The partial answer is kept.")
    expect(playground.send_button).to_be_enabled()
    expect(playground.stop_button).to_be_disabled()
    expect(playground.error).to_be_hidden()
    shown = answer.locator(".bubble").inner_text()
    playground.page.wait_for_timeout(600)  # more than two words' time: nothing else arrives
    assert answer.locator(".bubble").inner_text() == shown
    assert "You said" not in shown

    thread_id = playground.page.evaluate("location.hash").removeprefix("#c=")
    assert thread_id.startswith("thr_"), thread_id
    stored = _stored_answer(server.url, thread_id, token)
    assert stored.startswith(shown.strip()[:20]), (stored, shown)
    assert "You said" not in stored

    # the conversation goes on after a stop; reopened, it shows the partial answer
    paced_model.delay = 0.0
    playground.send("add a task to water the plants")
    playground.wait_answered()
    expect(playground.tool_cards("add_task")).to_have_count(1)
    playground.page.reload()
    expect(playground.messages.locator(".message.user")).to_have_count(2, timeout=WAIT_MS)
    expect(playground.answers().first).to_contain_text(shown.strip()[:20])


def _stored_answer(base: str, thread_id: str, token: str) -> str:
    """The assistant message the server saved when the request was aborted (saved as it ends)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        messages = api_get(f"{base}/api/conversations/{thread_id}", token)["messages"]
        answers = [m["content"] for m in messages if m["role"] == "assistant"]
        if answers:
            return str(answers[0])
        time.sleep(0.1)
    raise AssertionError("the partial answer was not stored")


def test_the_model_picker_offers_the_servers_models_and_the_pick_is_sent(
    server: UvicornThread, open_playground: OpenPlayground, token: str
) -> None:
    playground = open_playground(server.url, settings={"token": token})
    picker = playground.page.get_by_role("combobox", name="Model")
    expect(picker).to_have_value("offline", timeout=WAIT_MS)  # MODEL_CHOICES unset, offline
    expect(picker.locator("option")).to_have_text(["Offline model"])

    with playground.page.expect_request(lambda request: request.url.endswith("/chatkit")) as sent:
        playground.send("what can you do?")
    playground.wait_answered()
    body = sent.value.post_data_json
    assert body is not None
    assert body["model"] == "offline"
