"""Tool activity as a visible workflow item, over the real model path (both APIs, the fake).

A turn whose model calls two tools shows one workflow with a task per call while the tools run
(``added`` with the first, the second ``added`` as a task, both updated when they finish), done
when the turn ends, and the same after a reload (``items.list``). The hidden records the model
replays stay as they are (the next request carries both calls), the model never reads the
workflow, and the REST messages show the tool calls exactly as before.
"""

from __future__ import annotations

import httpx
from chatkit.types import (
    ThreadItemAddedEvent,
    ThreadItemUpdatedEvent,
    WorkflowItem,
    WorkflowTaskAdded,
    WorkflowTaskUpdated,
)
from chatkit_backend.caller import Caller
from chatkit_backend.db import Database
from conversations_app.service import ConversationService
from pydantic import TypeAdapter

from tests.e2e.chat.chat_support import (
    assert_documented_order,
    post,
    stream,
    task_lines,
    tool_workflows,
    user_input,
)
from tests.support.fake_openai import Api, FakeOpenAI, Reply, ToolCall, text

WORKFLOW: TypeAdapter[WorkflowItem] = TypeAdapter(WorkflowItem)


def create(said: str) -> dict[str, object]:
    return {"type": "threads.create", "params": {"input": user_input(said)}}


async def test_two_tool_calls_are_one_workflow_live_and_after_a_reload(
    api: Api,
    api_client: httpx.AsyncClient,
    fake: FakeOpenAI,
    alice: Caller,
    pg_database: Database,
) -> None:
    fake.script(
        Reply(deltas=("On it.",), calls=(ToolCall("add_task", {"title": "water the plants"}),)),
        Reply(calls=(ToolCall("list_tasks", {}),)),
        text("Added; you have one task."),
    )
    result = await stream(api_client, alice, create("add water the plants, then list"))
    events = result.events
    assert_documented_order(events, new_thread=True)

    added = [e for e in events if isinstance(e, ThreadItemAddedEvent) and e.item.type == "workflow"]
    assert len(added) == 1
    workflow_id = added[0].item.id
    updates = [
        e.update
        for e in events
        if isinstance(e, ThreadItemUpdatedEvent) and e.item_id == workflow_id
    ]
    kinds = [type(update).__name__ for update in updates]
    assert kinds == ["WorkflowTaskUpdated", "WorkflowTaskAdded", "WorkflowTaskUpdated"]
    assert isinstance(updates[1], WorkflowTaskAdded)
    assert updates[1].task.status_indicator == "loading"  # shown while list_tasks runs
    assert isinstance(updates[2], WorkflowTaskUpdated)
    assert updates[2].task_index == 1

    (done,) = tool_workflows(events)
    assert done.id == workflow_id
    lines = task_lines(done)
    assert [(title, status) for title, status, _ in lines] == [
        ("add_task", "complete"),
        ("list_tasks", "complete"),
    ]
    assert "title: water the plants" in (lines[0][2] or "")
    assert "water the plants" in (lines[1][2] or "")  # the listing's outcome

    listed = await post(
        api_client, alice, {"type": "items.list", "params": {"thread_id": result.thread_id}}
    )
    stored = [item for item in listed.json()["data"] if item["type"] == "workflow"]
    assert len(stored) == 1
    assert task_lines(WORKFLOW.validate_python(stored[0])) == lines

    # The model still gets both calls replayed, and nothing of the workflow.
    await stream(
        api_client,
        alice,
        {
            "type": "threads.add_user_message",
            "params": {"thread_id": result.thread_id, "input": user_input("thanks")},
        },
    )
    seen = fake.requests[-1].transcript()
    assert [said.split()[0] for role, said in seen if role == "call"] == ["add_task", "list_tasks"]
    assert not [said for _, said in seen if "task was performed" in said]

    # The REST view: the tool calls as tool messages, as before; no workflow message.
    page = await ConversationService(pg_database).messages(alice, result.thread_id)
    roles = [message.role for message in page.messages]
    assert roles.count("tool") == 2
    assert set(roles) <= {"user", "assistant", "tool", "widget"}
