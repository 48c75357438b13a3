"""The ChatKit protocol over real HTTP: every request type, its wire types, order and errors."""

from __future__ import annotations

from datetime import datetime

import httpx
import pytest
from agents.testing import ScriptedModel, assistant_message
from chatkit.types import (
    Attachment,
    ClientToolCallItem,
    FileAttachment,
    ImageAttachment,
    Page,
    StructuredInputFreeform,
    StructuredInputItem,
    Thread,
    ThreadCreatedEvent,
    ThreadItem,
    ThreadItemDoneEvent,
    ThreadItemReplacedEvent,
    ThreadUpdatedEvent,
    UserMessageItem,
)
from chatkit_backend.caller import Caller
from chatkit_backend.db import Database
from chatkit_backend.store import PostgresStore
from chatkit_backend.tables import ThreadItemRow
from pydantic import TypeAdapter
from sqlalchemy import select

from tests.e2e.chat.chat_support import (
    Streamed,
    assert_documented_order,
    headers_for,
    json_body,
    post,
    stream,
    streamed_reply,
    text_deltas,
    user_input,
)

THREAD = TypeAdapter(Thread)
THREADS = TypeAdapter(Page[Thread])
ITEMS = TypeAdapter(Page[ThreadItem])
ATTACHMENT: TypeAdapter[Attachment] = TypeAdapter(Attachment)


async def new_thread(
    client: httpx.AsyncClient, model: ScriptedModel, user: Caller, text: str = "Hello"
) -> Streamed:
    model.enqueue(streamed_reply(["Hi ", "there!"]))
    result = await stream(
        client, user, {"type": "threads.create", "params": {"input": user_input(text)}}
    )
    assert result.status_code == 200, result.datas
    return result


def thread_id_of(result: Streamed) -> str:
    first = result.events[0]
    assert isinstance(first, ThreadCreatedEvent)
    return first.thread.id


def answer_text(result: Streamed) -> str:
    return "".join(text_deltas(result.events))


# --- streaming request types -------------------------------------------------------------------


async def test_threads_create_streams_sdk_events_in_order(
    client: httpx.AsyncClient, model: ScriptedModel, alice: Caller, store: PostgresStore
) -> None:
    result = await new_thread(client, model, alice, "What is the plan for today?")

    assert result.headers["content-type"].startswith("text/event-stream")
    assert result.headers["cache-control"] == "no-cache"
    assert result.headers["x-accel-buffering"] == "no"
    events = result.events  # every data parses as the SDK's ThreadStreamEvent union
    assert_documented_order(events, new_thread=True)
    types = [event.type for event in events]
    assert types[:3] == ["thread.created", "thread.item.done", "stream_options"]
    assert types[-1] == "thread.item.done"
    assert answer_text(result) == "Hi there!"
    title_updates = [event for event in events if isinstance(event, ThreadUpdatedEvent)]
    assert [event.thread.title for event in title_updates] == ["What is the plan for today?"]

    thread_id = thread_id_of(result)
    stored = (await store.load_thread_items(thread_id, None, 10, "asc", alice)).data
    assert [item.type for item in stored] == ["user_message", "assistant_message"]
    assert (await store.load_thread(thread_id, alice)).title == "What is the plan for today?"


async def test_add_user_message_continues_with_history(
    client: httpx.AsyncClient, model: ScriptedModel, alice: Caller
) -> None:
    thread_id = thread_id_of(await new_thread(client, model, alice, "My name is Ada."))
    model.enqueue(streamed_reply(["You are ", "Ada."]))

    result = await stream(
        client,
        alice,
        {
            "type": "threads.add_user_message",
            "params": {"thread_id": thread_id, "input": user_input("What is my name?")},
        },
    )

    assert result.status_code == 200
    assert_documented_order(result.events, new_thread=False)
    assert [event.type for event in result.events][:2] == ["thread.item.done", "stream_options"]
    assert answer_text(result) == "You are Ada."
    sent = model.last_call.input  # type: ignore[union-attr]
    assert [item.get("role") for item in sent] == ["user", "assistant", "user"]
    assert "My name is Ada." in str(sent[0])
    assert "Hi there!" in str(sent[1])


async def test_retry_after_item_replaces_the_answer(
    client: httpx.AsyncClient, model: ScriptedModel, alice: Caller, store: PostgresStore
) -> None:
    created = await new_thread(client, model, alice)
    thread_id = thread_id_of(created)
    user_message = next(
        event.item
        for event in created.events
        if isinstance(event, ThreadItemDoneEvent) and isinstance(event.item, UserMessageItem)
    )
    model.enqueue([assistant_message("A better answer.", item_id="retry")])

    result = await stream(
        client,
        alice,
        {
            "type": "threads.retry_after_item",
            "params": {"thread_id": thread_id, "item_id": user_message.id},
        },
    )

    assert result.status_code == 200
    assert_documented_order(result.events, new_thread=False)
    assert result.events[0].type == "stream_options"
    stored = (await store.load_thread_items(thread_id, None, 10, "asc", alice)).data
    assert [item.type for item in stored] == ["user_message", "assistant_message"]
    assert stored[1].content[0].text == "A better answer."  # type: ignore[union-attr]


async def test_add_client_tool_output_resumes_with_the_output(
    client: httpx.AsyncClient, model: ScriptedModel, alice: Caller, store: PostgresStore
) -> None:
    thread_id = thread_id_of(await new_thread(client, model, alice))
    pending = ClientToolCallItem(
        id="tc_client_1",
        thread_id=thread_id,
        created_at=datetime.now(),
        call_id="call_client_1",
        name="get_location",
        arguments={},
    )
    await store.add_thread_item(thread_id, pending, alice)
    model.enqueue(streamed_reply(["You are in ", "Paris."]))

    result = await stream(
        client,
        alice,
        {
            "type": "threads.add_client_tool_output",
            "params": {"thread_id": thread_id, "result": {"city": "Paris"}},
        },
    )

    assert result.status_code == 200
    assert_documented_order(result.events, new_thread=False)
    assert answer_text(result) == "You are in Paris."
    outputs = [item for item in model.last_call.input if item.get("type") == "function_call_output"]  # type: ignore[union-attr]
    assert outputs == [
        {"type": "function_call_output", "call_id": "call_client_1", "output": '{"city": "Paris"}'}
    ]


async def test_add_structured_input_replaces_the_item_and_answers(
    client: httpx.AsyncClient, model: ScriptedModel, alice: Caller, store: PostgresStore
) -> None:
    thread_id = thread_id_of(await new_thread(client, model, alice))
    question = StructuredInputItem(
        id="si_1",
        thread_id=thread_id,
        created_at=datetime.now(),
        inputs=[StructuredInputFreeform(id="q1", question="Which city?")],
    )
    await store.add_thread_item(thread_id, question, alice)
    model.enqueue(streamed_reply(["Noted: ", "Oslo."]))

    result = await stream(
        client,
        alice,
        {
            "type": "threads.add_structured_input",
            "params": {
                "thread_id": thread_id,
                "item_id": "si_1",
                "input": {"answers": {"q1": {"values": ["Oslo"]}}},
            },
        },
    )

    assert result.status_code == 200
    assert_documented_order(result.events, new_thread=False)
    replaced = [event for event in result.events if isinstance(event, ThreadItemReplacedEvent)]
    assert [event.item.status for event in replaced] == ["answered"]  # type: ignore[union-attr]
    assert answer_text(result) == "Noted: Oslo."


async def test_custom_actions_are_refused_before_streaming(
    client: httpx.AsyncClient, model: ScriptedModel, alice: Caller
) -> None:
    thread_id = thread_id_of(await new_thread(client, model, alice))
    action = {"thread_id": thread_id, "action": {"type": "archive", "payload": {}}}

    streaming = await stream(client, alice, {"type": "threads.custom_action", "params": action})
    sync = await post(client, alice, {"type": "threads.sync_custom_action", "params": action})

    for response in (streaming, sync):
        assert response.status_code == 400
        assert response.headers["content-type"] == "application/json"
    assert json_body(sync)["detail"].startswith("Unknown action 'archive'; this server knows")


# --- JSON request types ------------------------------------------------------------------------


async def test_json_requests_answer_sdk_types(
    client: httpx.AsyncClient,
    model: ScriptedModel,
    alice: Caller,
    store: PostgresStore,
    pg_database: Database,
) -> None:
    thread_id = thread_id_of(await new_thread(client, model, alice, "First question"))

    got = await post(
        client, alice, {"type": "threads.get_by_id", "params": {"thread_id": thread_id}}
    )
    thread = THREAD.validate_json(got.content)
    assert thread.id == thread_id
    assert thread.title == "First question"
    assert [item.type for item in thread.items.data] == ["user_message", "assistant_message"]

    listed = THREADS.validate_json(
        (await post(client, alice, {"type": "threads.list", "params": {"limit": 5}})).content
    )
    assert [listed_thread.id for listed_thread in listed.data] == [thread_id]

    items = ITEMS.validate_json(
        (
            await post(client, alice, {"type": "items.list", "params": {"thread_id": thread_id}})
        ).content
    )
    assistant_id = next(item.id for item in items.data if item.type == "assistant_message")

    renamed = await post(
        client,
        alice,
        {"type": "threads.update", "params": {"thread_id": thread_id, "title": "Renamed"}},
    )
    assert THREAD.validate_json(renamed.content).title == "Renamed"

    feedback = await post(
        client,
        alice,
        {
            "type": "items.feedback",
            "params": {"thread_id": thread_id, "item_ids": [assistant_id], "kind": "positive"},
        },
    )
    assert feedback.status_code == 200
    assert json_body(feedback) == {}
    async with pg_database.session() as session:
        stored_feedback = await session.scalar(
            select(ThreadItemRow.feedback).where(  # type: ignore[call-overload]
                ThreadItemRow.user_id == alice.user_id, ThreadItemRow.id == assistant_id
            )
        )
    assert stored_feedback == "positive"

    file = ATTACHMENT.validate_json(
        (
            await post(
                client,
                alice,
                {
                    "type": "attachments.create",
                    "params": {"name": "notes.txt", "size": 12, "mime_type": "text/plain"},
                },
            )
        ).content
    )
    image = ATTACHMENT.validate_json(
        (
            await post(
                client,
                alice,
                {
                    "type": "attachments.create",
                    "params": {"name": "cat.png", "size": 99, "mime_type": "image/png"},
                },
            )
        ).content
    )
    assert isinstance(file, FileAttachment)
    assert isinstance(image, ImageAttachment)
    assert (await store.load_attachment(file.id, alice)).name == "notes.txt"
    deleted = await post(
        client, alice, {"type": "attachments.delete", "params": {"attachment_id": file.id}}
    )
    assert deleted.status_code == 200
    assert json_body(deleted) == {}

    gone = await post(client, alice, {"type": "threads.delete", "params": {"thread_id": thread_id}})
    assert gone.status_code == 200
    assert json_body(gone) == {}
    missing = await post(
        client, alice, {"type": "threads.get_by_id", "params": {"thread_id": thread_id}}
    )
    assert missing.status_code == 404


async def test_an_uploaded_attachment_reaches_the_model_as_a_file_part(
    client: httpx.AsyncClient, model: ScriptedModel, alice: Caller, store: PostgresStore
) -> None:
    pdf = b"%PDF-1.4 tiny"
    created = await post(
        client,
        alice,
        {
            "type": "attachments.create",
            "params": {"name": "report.pdf", "size": len(pdf), "mime_type": "application/pdf"},
        },
    )
    attachment = json_body(created)
    attachment_id = attachment["id"]
    descriptor = attachment["upload_descriptor"]
    assert descriptor["url"].startswith(str(client.base_url).rstrip("/") + "/attachments/local/")
    uploaded = await client.put(descriptor["url"], content=pdf, headers=descriptor["headers"])
    assert uploaded.status_code == 200
    model.enqueue([assistant_message("I see a PDF.", item_id="pdf")])

    result = await stream(
        client,
        alice,
        {
            "type": "threads.create",
            "params": {"input": user_input("Summarise this", [attachment_id])},
        },
    )

    assert result.status_code == 200
    sent = str(model.last_call.input)  # type: ignore[union-attr]
    assert '"report.pdf" (application/pdf, 13 B)' in sent
    assert "data:application/pdf;base64,JVBERi0xLjQgdGlueQ==" in sent
    stored = await store.load_attachment(attachment_id, alice)
    assert stored.thread_id == thread_id_of(result)


async def test_transcription_without_a_provider_is_not_supported(
    client: httpx.AsyncClient, alice: Caller
) -> None:
    response = await post(
        client,
        alice,
        {"type": "input.transcribe", "params": {"audio_base64": "AAAA", "mime_type": "audio/webm"}},
    )

    assert response.status_code == 501
    assert "Dictation" in json_body(response)["detail"]


# --- errors before the stream starts -----------------------------------------------------------


async def test_unauthenticated_requests_get_401(client: httpx.AsyncClient) -> None:
    body = {"type": "threads.list", "params": {}}
    missing = await client.post("/chatkit", json=body)
    forged = await client.post("/chatkit", json=body, headers={"Authorization": "Bearer x.y.z"})

    for response in (missing, forged):
        assert response.status_code == 401
        assert "detail" in json_body(response)


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"type": "threads.create", "params": {}}', "params.input"),
        (b'{"type": "threads.explode", "params": {}}', "threads.explode"),
        (b'{"hello": "world"}', "Expected a ChatKit request"),
    ],
)
async def test_invalid_bodies_get_400_with_the_reason(
    client: httpx.AsyncClient, alice: Caller, content: bytes, detail: str
) -> None:
    response = await client.post(
        "/chatkit",
        content=content,
        headers={**headers_for(alice), "Content-Type": "application/json"},
    )

    assert response.status_code == 400
    assert detail in json_body(response)["detail"]


@pytest.mark.parametrize(("title", "status"), [("", 400), ("   ", 400), ("x" * 201, 400)])
async def test_threads_update_follows_the_rest_title_rule(
    client: httpx.AsyncClient,
    model: ScriptedModel,
    store: PostgresStore,
    alice: Caller,
    title: str,
    status: int,
) -> None:
    model.enqueue(streamed_reply(["Hi."]))
    thread_id = (
        await stream(
            client, alice, {"type": "threads.create", "params": {"input": user_input("T")}}
        )
    ).thread_id

    refused = await post(
        client,
        alice,
        {"type": "threads.update", "params": {"thread_id": thread_id, "title": title}},
    )
    trimmed = await post(
        client,
        alice,
        {"type": "threads.update", "params": {"thread_id": thread_id, "title": "  Kept  "}},
    )

    assert refused.status_code == status
    assert "title" in json_body(refused)["detail"]
    assert THREAD.validate_json(trimmed.content).title == "Kept"
    assert (await store.load_thread(thread_id, alice)).title == "Kept"


async def test_page_limits_are_bounded(
    client: httpx.AsyncClient, model: ScriptedModel, alice: Caller
) -> None:
    """A client-chosen limit can neither load a whole history nor stall a has_more loop."""
    model.enqueue(streamed_reply(["Hi."]))
    await stream(client, alice, {"type": "threads.create", "params": {"input": user_input("A")}})
    model.enqueue(streamed_reply(["Hi."]))
    await stream(client, alice, {"type": "threads.create", "params": {"input": user_input("B")}})

    # 0 means "the SDK's default page" (20); negative: one; huge: capped (at 100).
    for limit, expected in ((0, 2), (-5, 1), (100_000_000, 2)):
        response = await post(client, alice, {"type": "threads.list", "params": {"limit": limit}})
        page = json_body(response)
        assert response.status_code == 200
        assert len(page["data"]) == expected
        assert page["has_more"] is (expected == 1)


async def test_unknown_thread_gets_404_json_not_a_stream(
    client: httpx.AsyncClient, alice: Caller
) -> None:
    result = await stream(
        client,
        alice,
        {
            "type": "threads.add_user_message",
            "params": {"thread_id": "thr_missing", "input": user_input("Hello?")},
        },
    )

    assert result.status_code == 404
    assert result.headers["content-type"] == "application/json"


async def test_too_long_messages_and_bodies_get_413(
    client: httpx.AsyncClient, model: ScriptedModel, alice: Caller
) -> None:
    too_long = {"type": "threads.create", "params": {"input": user_input("x" * 2_001)}}
    listed_before = await post(client, alice, {"type": "threads.list", "params": {}})

    message = await stream(client, alice, too_long)
    body = await client.post(
        "/chatkit",
        content=b'{"message": "' + b"y" * 1_100_000 + b'"}',
        headers={**headers_for(alice), "Content-Type": "application/json"},
    )

    assert message.status_code == 413
    assert body.status_code == 413
    assert "at most 2000" in json_body(await post(client, alice, too_long))["detail"]
    listed_after = await post(client, alice, {"type": "threads.list", "params": {}})
    assert json_body(listed_after) == json_body(listed_before)  # no thread was created


async def test_unknown_attachment_fails_create_without_leaving_a_thread(
    client: httpx.AsyncClient, alice: Caller
) -> None:
    result = await stream(
        client,
        alice,
        {"type": "threads.create", "params": {"input": user_input("See file", ["atc_nope"])}},
    )
    listed = THREADS.validate_json(
        (await post(client, alice, {"type": "threads.list", "params": {}})).content
    )

    assert result.status_code == 404
    assert listed.data == []
