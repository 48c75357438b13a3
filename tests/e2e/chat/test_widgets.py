"""Widgets, widget actions and client effects over real HTTP, with the offline model and the real
model path (the ``openai`` client against the fake server, both APIs).

A turn that lists tasks streams a stored ``WidgetItem``; later turns describe it to the model;
the widget's buttons (``threads.custom_action``) and checkbox (``threads.sync_custom_action``)
change the caller's task, update the widget in place and leave a note for the model; everything
an action body can get wrong is a clear 4xx that changes nothing.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from chat_app.task_repository import TaskRepository
from chat_app.task_widgets import TaskView, shown_task_ids, task_list_widget
from chatkit.types import (
    AssistantMessageItem,
    ClientEffectEvent,
    HiddenContextItem,
    LockedStatus,
    Page,
    ThreadItem,
    ThreadItemDoneEvent,
    ThreadItemUpdatedEvent,
    ThreadStreamEvent,
    WidgetItem,
    WidgetRootUpdated,
)
from chatkit.widgets import StrictWidgetRoot
from chatkit_backend.caller import Caller
from chatkit_backend.db import Database
from chatkit_backend.store import PostgresStore
from pydantic import TypeAdapter
from sqlalchemy import event

from tests.e2e.chat.chat_support import (
    ChatServerThread,
    Streamed,
    factory_with,
    headers_for,
    json_body,
    post,
    server_settings,
    sse_messages,
    stream,
    user_input,
)
from tests.e2e.chat.test_chatkit_fuzz import fuzz
from tests.support.fake_openai import FakeOpenAI, call, text

ITEMS = TypeAdapter(Page[ThreadItem])
STRICT_WIDGET: TypeAdapter[Any] = TypeAdapter(StrictWidgetRoot)


@pytest.fixture(scope="module")
def offline_server(pg_url: str) -> Iterator[ChatServerThread]:
    """A chat server with no model configured: the built-in offline model."""
    server = ChatServerThread(server_settings(pg_url), factory_with(None)).start()
    yield server
    server.stop()


@pytest.fixture
async def offline(offline_server: ChatServerThread) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=offline_server.url, timeout=30) as http:
        yield http


@pytest.fixture
def tasks(pg_database: Database) -> TaskRepository:
    return TaskRepository(pg_database)


async def say(
    client: httpx.AsyncClient, user: Caller, message: str, thread_id: str | None = None
) -> Streamed:
    body: dict[str, Any] = (
        {"type": "threads.create", "params": {"input": user_input(message)}}
        if thread_id is None
        else {
            "type": "threads.add_user_message",
            "params": {"thread_id": thread_id, "input": user_input(message)},
        }
    )
    result = await stream(client, user, body)
    assert result.status_code == 200, result.datas
    return result


def widgets_of(events: list[ThreadStreamEvent]) -> list[WidgetItem]:
    return [
        event.item
        for event in events
        if isinstance(event, ThreadItemDoneEvent) and isinstance(event.item, WidgetItem)
    ]


def effects_of(events: list[ThreadStreamEvent]) -> list[ClientEffectEvent]:
    return [event for event in events if isinstance(event, ClientEffectEvent)]


def assert_valid_widget(item: WidgetItem) -> None:
    """The widget validates as the SDK's strict component models, nothing dropped."""
    dumped = item.widget.model_dump(exclude_none=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        strict = STRICT_WIDGET.validate_python(dumped)
    assert strict.model_dump(exclude_unset=True, exclude_none=True) == dumped


def rows(widget: WidgetItem) -> dict[int, dict[str, Any]]:
    """Each task row of a task-list widget: its title text, checkbox state and button labels."""
    found: dict[int, dict[str, Any]] = {}
    for row in widget.widget.model_dump(exclude_none=True)["children"]:
        key = row.get("key") or ""
        if not key.startswith("task-"):
            continue
        children = row["children"]
        found[int(key.removeprefix("task-"))] = {
            "title": children[1]["children"][0]["value"],
            "checked": children[0]["defaultChecked"],
            "buttons": [child["label"] for child in children if child["type"] == "Button"],
        }
    return found


async def items_of(client: httpx.AsyncClient, user: Caller, thread_id: str) -> list[ThreadItem]:
    response = await post(
        client,
        user,
        {"type": "items.list", "params": {"thread_id": thread_id, "limit": 50, "order": "asc"}},
    )
    assert response.status_code == 200, response.text
    return ITEMS.validate_json(response.content).data


def action_body(
    kind: str, thread_id: str, item_id: str | None, action: str, payload: Any
) -> dict[str, Any]:
    params: dict[str, Any] = {
        "thread_id": thread_id,
        "action": {"type": action, "payload": payload},
    }
    if item_id is not None:
        params["item_id"] = item_id
    return {"type": kind, "params": params}


async def listed_thread(
    client: httpx.AsyncClient, user: Caller, *titles: str
) -> tuple[str, WidgetItem]:
    """A thread where the offline model added ``titles`` and then listed them (its widget)."""
    first = await say(client, user, f"add a task to {titles[0]}")
    thread_id = first.thread_id
    for title in titles[1:]:
        await say(client, user, f"add a task to {title}", thread_id)
    listed = await say(client, user, "list my tasks", thread_id)
    (widget,) = widgets_of(listed.events)
    return thread_id, widget


# --- widgets from the tools -------------------------------------------------------------------


async def test_offline_list_my_tasks_streams_a_stored_task_list_widget(
    offline: httpx.AsyncClient, alice: Caller, tasks: TaskRepository
) -> None:
    added = await say(offline, alice, "add a task to buy milk")
    thread_id = added.thread_id
    (card,) = widgets_of(added.events)
    (milk,) = await tasks.list(alice.user_id)
    assert card.copy_text == f'Task added: #{milk.id} "buy milk" (open).'
    assert [(e.name, e.data) for e in effects_of(added.events)] == [
        ("tasks.changed", {"change": "added", "task_ids": [milk.id]})
    ]

    listed = await say(offline, alice, "list my tasks", thread_id)

    (widget,) = widgets_of(listed.events)
    assert_valid_widget(widget)
    assert widget.widget.type == "Card"
    assert rows(widget) == {
        milk.id: {"title": "buy milk", "checked": False, "buttons": ["Complete", "Delete"]}
    }
    assert widget.copy_text == f'Task list (1 open): #{milk.id} "buy milk" (open).'
    assert effects_of(listed.events) == []  # listing changes nothing
    stored = [item for item in await items_of(offline, alice, thread_id) if item.type == "widget"]
    assert [item.id for item in stored] == [card.id, widget.id]
    assert stored[1] == widget


async def test_widget_turns_over_the_fake_on_both_apis_and_the_next_turn_reads_them(
    api_client: httpx.AsyncClient, fake: FakeOpenAI, alice: Caller, tasks: TaskRepository
) -> None:
    task = await tasks.add(alice.user_id, "water the plants")
    fake.script(call("list_tasks", {"include_completed": True}), text("You have one task."))
    first = await say(api_client, alice, "what do I have to do?")

    (widget,) = widgets_of(first.events)
    assert_valid_widget(widget)
    assert shown_task_ids(widget.widget) == [task.id]

    fake.script(text("Sure."))
    await say(api_client, alice, "thanks", first.thread_id)

    transcript = fake.requests[-1].transcript()
    described = [said for role, said in transcript if role == "user" and "widget" in said]
    assert described == [f"[A widget (item {widget.id}) was shown to the user: {widget.copy_text}]"]
    assert transcript[-1] == ("user", "thanks")


# --- actions ----------------------------------------------------------------------------------


async def test_complete_action_updates_the_task_and_the_widget_in_place(
    offline: httpx.AsyncClient, alice: Caller, tasks: TaskRepository, store: PostgresStore
) -> None:
    thread_id, widget = await listed_thread(offline, alice, "buy milk", "call mom")
    milk, mom = await tasks.list(alice.user_id)

    done = await stream(
        offline,
        alice,
        action_body(
            "threads.custom_action", thread_id, widget.id, "tasks.complete", {"task_id": milk.id}
        ),
    )

    assert done.status_code == 200, done.datas
    updates = [e for e in done.events if isinstance(e, ThreadItemUpdatedEvent)]
    assert [(u.item_id, type(u.update)) for u in updates] == [(widget.id, WidgetRootUpdated)]
    assert [(e.name, e.data) for e in effects_of(done.events)] == [
        ("tasks.changed", {"change": "completed", "task_ids": [milk.id]})
    ]
    confirmations = [
        e.item
        for e in done.events
        if isinstance(e, ThreadItemDoneEvent) and isinstance(e.item, AssistantMessageItem)
    ]
    assert [m.content[0].text for m in confirmations] == ['"buy milk" marked as done.']
    assert (await tasks.get(alice.user_id, milk.id)).completed
    (stored,) = [i for i in await items_of(offline, alice, thread_id) if i.id == widget.id]
    assert isinstance(stored, WidgetItem)
    assert rows(stored) == {
        milk.id: {"title": "buy milk", "checked": True, "buttons": ["Delete"]},
        mom.id: {"title": "call mom", "checked": False, "buttons": ["Complete", "Delete"]},
    }
    assert stored.widget == updates[0].update.widget  # type: ignore[union-attr]
    notes = [
        item
        for item in (await store.load_thread_items(thread_id, None, 50, "asc", alice)).data
        if isinstance(item, HiddenContextItem) and isinstance(item.content, str)
    ]
    assert [note.content.split(" with ")[0] for note in notes] == [
        f'The user marked as done task #{milk.id} "buy milk"'
    ]

    relisted = await say(offline, alice, "list all my tasks", thread_id)
    (fresh,) = widgets_of(relisted.events)
    assert rows(fresh) == rows(stored)


async def test_sync_toggle_and_delete(
    offline: httpx.AsyncClient, alice: Caller, tasks: TaskRepository
) -> None:
    thread_id, widget = await listed_thread(offline, alice, "buy milk", "call mom")
    milk, mom = await tasks.list(alice.user_id)

    toggled = await post(
        offline,
        alice,
        action_body(
            "threads.sync_custom_action",
            thread_id,
            widget.id,
            "tasks.set_completed",
            {"task_id": mom.id, "completed": True},
        ),
    )
    assert toggled.status_code == 200, toggled.text
    updated = json_body(toggled)["updated_item"]
    assert updated["id"] == widget.id
    assert (await tasks.get(alice.user_id, mom.id)).completed

    untoggled = await post(
        offline,
        alice,
        action_body(
            "threads.sync_custom_action",
            thread_id,
            widget.id,
            "tasks.set_completed",
            {"task_id": mom.id, "completed": False},
        ),
    )
    assert untoggled.status_code == 200
    assert not (await tasks.get(alice.user_id, mom.id)).completed

    deleted = await stream(
        offline,
        alice,
        action_body(
            "threads.custom_action", thread_id, widget.id, "tasks.delete", {"task_id": milk.id}
        ),
    )
    assert deleted.status_code == 200
    assert [(e.name, e.data) for e in effects_of(deleted.events)] == [
        ("tasks.changed", {"change": "deleted", "task_ids": [milk.id]})
    ]
    assert [t.id for t in await tasks.list(alice.user_id, include_completed=True)] == [mom.id]
    (stored,) = [i for i in await items_of(offline, alice, thread_id) if i.id == widget.id]
    assert isinstance(stored, WidgetItem)
    assert list(rows(stored)) == [mom.id]
    assert rows(stored)[mom.id]["checked"] is False


async def test_refused_actions_are_clear_4xx_and_change_nothing(
    offline: httpx.AsyncClient,
    alice: Caller,
    bob: Caller,
    tasks: TaskRepository,
    store: PostgresStore,
) -> None:
    thread_id, widget = await listed_thread(offline, alice, "buy milk")
    (milk,) = await tasks.list(alice.user_id)
    bobs_thread, bobs_widget = await listed_thread(offline, bob, "bob's laundry")
    (laundry,) = await tasks.list(bob.user_id)
    # A widget in Bob's thread that claims to show Alice's task (as a forged client could send).
    forged = WidgetItem(
        id="wgt_forged_" + bob.user_id,
        thread_id=bobs_thread,
        created_at=datetime.now(),
        widget=task_list_widget([TaskView(id=milk.id, title="x", completed=False)]).widget,
    )
    await store.add_thread_item(bobs_thread, forged, bob)
    user_message = next(
        i for i in await items_of(offline, alice, thread_id) if i.type == "user_message"
    )
    complete = {"task_id": milk.id}

    cases: dict[str, tuple[Caller, dict[str, Any], int]] = {
        "another user's thread": (
            bob,
            action_body("K", thread_id, widget.id, "tasks.complete", complete),
            404,
        ),
        "another user's widget in own thread": (
            bob,
            action_body("K", bobs_thread, widget.id, "tasks.complete", complete),
            404,
        ),
        "another user's task": (
            bob,
            action_body("K", bobs_thread, forged.id, "tasks.complete", complete),
            404,
        ),
        "a task the widget does not show": (
            alice,
            action_body("K", thread_id, widget.id, "tasks.complete", {"task_id": laundry.id}),
            404,
        ),
        "unknown action type": (
            alice,
            action_body("K", thread_id, widget.id, "tasks.archive", complete),
            400,
        ),
        "no payload": (alice, action_body("K", thread_id, widget.id, "tasks.complete", None), 400),
        "task id as a string": (
            alice,
            action_body("K", thread_id, widget.id, "tasks.complete", {"task_id": str(milk.id)}),
            400,
        ),
        "task id out of range": (
            alice,
            action_body("K", thread_id, widget.id, "tasks.complete", {"task_id": 2**63}),
            400,
        ),
        "task id a boolean": (
            alice,
            action_body("K", thread_id, widget.id, "tasks.complete", {"task_id": True}),
            400,
        ),
        "toggle without the state": (
            alice,
            action_body("K", thread_id, widget.id, "tasks.set_completed", complete),
            400,
        ),
        "no widget item": (
            alice,
            action_body("K", thread_id, None, "tasks.complete", complete),
            400,
        ),
        "a user message as the widget": (
            alice,
            action_body("K", thread_id, user_message.id, "tasks.complete", complete),
            400,
        ),
        "a missing item": (
            alice,
            action_body("K", thread_id, "wgt_missing", "tasks.complete", complete),
            404,
        ),
    }
    before = await items_of(offline, alice, thread_id)
    statuses: dict[str, tuple[int, int]] = {}
    for name, (user, body, expected) in cases.items():
        for kind in ("threads.custom_action", "threads.sync_custom_action"):
            body = {**body, "type": kind}
            response = await post(offline, user, body)
            assert response.headers["content-type"] == "application/json", (name, kind)
            statuses[f"{name} ({kind})"] = (response.status_code, expected)
    assert {name: got for name, (got, _) in statuses.items()} == {
        name: expected for name, (_, expected) in statuses.items()
    }
    assert not (await tasks.get(alice.user_id, milk.id)).completed
    assert not (await tasks.get(bob.user_id, laundry.id)).completed
    assert await items_of(offline, alice, thread_id) == before
    # ... and the thread is still usable.
    assert widgets_of((await say(offline, alice, "list my tasks", thread_id)).events)
    assert bobs_widget.id != widget.id


async def test_actions_on_a_deleted_task_or_a_locked_thread_are_refused(
    offline: httpx.AsyncClient, alice: Caller, tasks: TaskRepository, store: PostgresStore
) -> None:
    added = await say(offline, alice, "add a task to buy milk")
    (card,) = widgets_of(added.events)
    (milk,) = await tasks.list(alice.user_id)
    await tasks.delete(alice.user_id, milk.id)  # e.g. in another tab

    for action in ("tasks.complete", "tasks.delete"):
        body = action_body(
            "threads.custom_action", added.thread_id, card.id, action, {"task_id": milk.id}
        )
        gone = await post(offline, alice, body)
        assert gone.status_code == 404
        assert json_body(gone)["detail"] == f"Task {milk.id} not found."

    thread_id, widget = await listed_thread(offline, alice, "call mom")
    (mom,) = await tasks.list(alice.user_id)
    thread = await store.load_thread(thread_id, alice)
    thread.status = LockedStatus(reason="archived")
    await store.save_thread(thread, alice)
    locked = await post(
        offline,
        alice,
        action_body(
            "threads.sync_custom_action",
            thread_id,
            widget.id,
            "tasks.complete",
            {"task_id": mom.id},
        ),
    )
    assert locked.status_code == 409
    assert "locked" in json_body(locked)["detail"]
    assert not (await tasks.get(alice.user_id, mom.id)).completed


# --- the simple protocol ---------------------------------------------------------------------


async def test_simple_protocol_carries_the_widget_event(
    offline: httpx.AsyncClient, alice: Caller
) -> None:
    async with offline.stream(
        "POST", "/chatkit", json={"message": "add a task to buy milk"}, headers=headers_for(alice)
    ) as response:
        events = [json.loads(m["data"]) for m in [m async for m in sse_messages(response)][:-1]]
    (widget,) = [event for event in events if event["type"] == "widget"]
    assert widget["widget"]["type"] == "Card"
    assert widget["copy_text"].startswith("Task added: #")
    stored = [item for item in await items_of(offline, alice, events[0]["thread_id"])]
    assert [item.id for item in stored if item.type == "widget"] == [widget["item_id"]]


# --- hostile bodies ---------------------------------------------------------------------------

FUZZ_CASES = 200
FUZZ_SECONDS = 40.0


async def test_mutated_action_bodies_never_get_a_5xx_or_an_error_only_200(
    offline: httpx.AsyncClient, alice: Caller
) -> None:
    thread_id, widget = await listed_thread(offline, alice, "buy milk", "call mom")
    task_ids = shown_task_ids(widget.widget)
    seeds = [
        action_body(kind, thread_id, widget.id, action, payload)
        for kind in ("threads.custom_action", "threads.sync_custom_action")
        for action, payload in [
            ("tasks.complete", {"task_id": task_ids[0]}),
            ("tasks.delete", {"task_id": task_ids[1]}),
            ("tasks.set_completed", {"task_id": task_ids[0], "completed": False}),
        ]
    ]
    seen = await fuzz(
        offline, alice, seeds, seed="widget-action-fuzz", cases=FUZZ_CASES, seconds=FUZZ_SECONDS
    )
    print(f"{FUZZ_CASES} fuzzed action bodies, statuses {sorted(seen.statuses.items())}")
    assert seen.failures == []
    assert seen.statuses.get(400, 0) > FUZZ_CASES // 4  # the mutations did reach the checks


# --- cost -------------------------------------------------------------------------------------


async def test_a_widget_costs_one_item_write_and_no_extra_query(
    offline: httpx.AsyncClient, offline_server: ChatServerThread, alice: Caller
) -> None:
    """The widget is built from the tool's result (no query of its own) and stored as one item:
    a listing turn writes the user message, the tool workflow, the tool record, the widget and
    the answer."""
    thread_id, _ = await listed_thread(offline, alice, "buy milk")
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(" ".join(statement.split()).upper())

    engine = offline_server.database.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        await say(offline, alice, "list my tasks", thread_id)
    finally:
        event.remove(engine, "before_cursor_execute", count)

    item_inserts = [s for s in statements if "INSERT INTO THREAD_ITEMS" in s]  # or in a WITH
    task_reads = [s for s in statements if "FROM TASKS" in s]
    assert (len(item_inserts), len(task_reads)) == (5, 1), statements
    assert len(statements) <= 14, statements
