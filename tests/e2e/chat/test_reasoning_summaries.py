"""Reasoning summaries (``REASONING_SUMMARY``) over the Responses API, the fake as the model.

With the setting on, the request asks for them (and for the reasoning items' encrypted content,
since nothing is stored); what the model streams is shown as the SDK's reasoning workflow, done
before the answer and there after a reload. Off (the default), the request asks for nothing.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
from chatkit.types import ThoughtTask, WorkflowItem
from chatkit_backend.caller import Caller
from pydantic import TypeAdapter

from tests.e2e.chat.chat_support import (
    ChatServerThread,
    client_of,
    factory_with,
    post,
    stream,
    text_deltas,
    tool_workflows,
    user_input,
)
from tests.support.fake_openai import FakeOpenAI, Reply

WORKFLOW: TypeAdapter[WorkflowItem] = TypeAdapter(WorkflowItem)
THOUGHTS = (("Weighing ", "the options."), ("Picking ", "the shortest."))


def create(said: str) -> dict[str, object]:
    return {"type": "threads.create", "params": {"input": user_input(said)}}


async def test_summaries_are_requested_and_shown_as_the_reasoning_workflow(
    start_server: Callable[..., ChatServerThread], fake: FakeOpenAI, alice: Caller
) -> None:
    server = start_server(
        factory_with(None),
        openai_base_url=fake.base_url,
        openai_api="responses",
        reasoning_summary="auto",
    )
    fake.script(Reply(deltas=("Take ", "the bus."), reasoning=THOUGHTS))
    async with client_of(server) as client:
        result = await stream(client, alice, create("how do I get there?"))
        listed = await post(
            client, alice, {"type": "items.list", "params": {"thread_id": result.thread_id}}
        )

    body = fake.requests[0].body
    assert body["reasoning"] == {"summary": "auto"}
    assert body["include"] == ["reasoning.encrypted_content"]
    assert body["store"] is False

    (shown,) = tool_workflows(result.events)
    assert shown.workflow.type == "reasoning"
    assert [task.content for task in shown.workflow.tasks if isinstance(task, ThoughtTask)] == [
        "Weighing the options.",
        "Picking the shortest.",
    ]
    types = [event.type for event in result.events]
    assert types.index("thread.item.done", 2) < len(types) - 1  # the workflow, then the answer
    assert "".join(text_deltas(result.events)) == "Take the bus."
    stored = [WORKFLOW.validate_python(i) for i in listed.json()["data"] if i["type"] == "workflow"]
    assert [item.id for item in stored] == [shown.id]


async def test_no_summary_is_asked_for_by_default(
    api_client: httpx.AsyncClient, fake: FakeOpenAI, alice: Caller
) -> None:
    result = await stream(api_client, alice, create("hello"))
    assert result.status_code == 200
    assert "reasoning" not in fake.requests[0].body
    assert not fake.requests[0].body.get("include")
