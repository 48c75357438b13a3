"""Sample data and small helpers shared by the store conformance suite.

``item_variants`` holds one (or more) instance of every ``ThreadItem`` type the ChatKit SDK
defines, with the optional fields filled in, so a round trip through the store has something to
lose. Everything is built through the SDK's own pydantic types.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from chatkit.types import (
    ActiveStatus,
    Annotation,
    AssistantMessageContent,
    AssistantMessageItem,
    AttachmentUploadDescriptor,
    ClientToolCallItem,
    ClosedStatus,
    CustomSummary,
    CustomTask,
    DurationSummary,
    EndOfTurnItem,
    EntitySource,
    FileAttachment,
    FileSource,
    FileTask,
    GeneratedImage,
    GeneratedImageItem,
    HiddenContextItem,
    ImageAttachment,
    ImageTask,
    InferenceOptions,
    LockedStatus,
    SDKHiddenContextItem,
    SearchTask,
    StructuredInputAnswer,
    StructuredInputFreeform,
    StructuredInputItem,
    StructuredInputMultipleChoice,
    StructuredInputMultipleChoiceOption,
    TaskItem,
    ThoughtTask,
    ThreadItem,
    ThreadMetadata,
    ToolChoice,
    URLSource,
    UserMessageItem,
    UserMessageTagContent,
    UserMessageTextContent,
    WidgetItem,
    Workflow,
    WorkflowItem,
)
from chatkit.widgets import WidgetRoot
from chatkit_backend.caller import Caller
from chatkit_backend.db import Database
from chatkit_backend.ids import new_id
from chatkit_backend.store import PostgresStore
from chatkit_backend.tool_calls import ToolCallRecord
from pydantic import AnyUrl, TypeAdapter
from sqlalchemy import Row, Table, select

NAIVE_T0 = datetime(2025, 3, 1, 9, 30, 15, 123456)
"""The SDK stamps items with naive ``datetime.now()``; most samples follow it."""


def naive(seconds: float = 0) -> datetime:
    return NAIVE_T0 + timedelta(seconds=seconds)


# --- threads -----------------------------------------------------------------------------------


def thread_variants() -> dict[str, ThreadMetadata]:
    """Threads in every status, with and without title/metadata, naive and aware times."""
    return {
        "active_naive": ThreadMetadata(id=new_id("thread"), created_at=naive(), title="Hello"),
        "active_aware_metadata": ThreadMetadata(
            id=new_id("thread"),
            created_at=datetime(2025, 3, 1, 9, 30, tzinfo=UTC),
            status=ActiveStatus(),
            allowed_image_domains=["images.example.com"],
            metadata={"source": "web", "nested": {"n": [1, 2.5, None, True]}, "ü": "ß"},
        ),
        "locked": ThreadMetadata(
            id=new_id("thread"),
            created_at=naive(1),
            title=None,
            status=LockedStatus(reason="moderation"),
        ),
        "closed": ThreadMetadata(
            id=new_id("thread"), created_at=naive(2), status=ClosedStatus(reason=None)
        ),
    }


def make_thread(created_at: datetime | None = None, **fields: Any) -> ThreadMetadata:
    return ThreadMetadata(id=new_id("thread"), created_at=created_at or naive(), **fields)


# --- items -------------------------------------------------------------------------------------


def _item_fields(thread_id: str, created_at: datetime | None, item_id: str = "") -> dict[str, Any]:
    """What every item has: its id (a new one unless given), thread and time (``naive()``)."""
    return {
        "id": item_id or new_id("message"),
        "thread_id": thread_id,
        "created_at": created_at or naive(),
    }


def user_message(
    thread_id: str, text: str = "hi", *, created_at: datetime | None = None, item_id: str = ""
) -> UserMessageItem:
    return UserMessageItem(
        content=[UserMessageTextContent(text=text)],
        inference_options=InferenceOptions(),
        **_item_fields(thread_id, created_at, item_id),
    )


def assistant_message(
    thread_id: str, text: str = "hello", *, created_at: datetime | None = None, item_id: str = ""
) -> AssistantMessageItem:
    return AssistantMessageItem(
        content=[AssistantMessageContent(text=text)], **_item_fields(thread_id, created_at, item_id)
    )


def tool_record_item(
    thread_id: str, record: ToolCallRecord, *, created_at: datetime | None = None
) -> HiddenContextItem:
    return HiddenContextItem(
        content=record.model_dump(mode="json"), **_item_fields(thread_id, created_at)
    )


def _attachments(thread_id: str) -> list[Any]:
    return [
        FileAttachment(
            id=new_id("attachment"),
            name="report.pdf",
            mime_type="application/pdf",
            thread_id=thread_id,
            upload_descriptor=AttachmentUploadDescriptor(
                url=AnyUrl("https://uploads.example.com/put/1"),
                method="PUT",
                headers={"x-amz-acl": "private"},
            ),
            metadata={"size": 1234},
        ),
        ImageAttachment(
            id=new_id("attachment"),
            name="cat.png",
            mime_type="image/png",
            preview_url=AnyUrl("https://cdn.example.com/cat.png"),
        ),
    ]


_WIDGET = {
    "type": "Card",
    "size": "sm",
    "children": [
        {"type": "Title", "value": "Order 42"},
        {"type": "Text", "value": "Shipped", "color": "secondary"},
    ],
}


def card_widget() -> WidgetRoot:
    """A small Card, built as a client would send it (the SDK deprecates the named classes)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return TypeAdapter(WidgetRoot).validate_python(_WIDGET)


def item_variants(thread_id: str) -> dict[str, ThreadItem]:
    """Every ThreadItem type the SDK defines (several shapes for the richer ones)."""
    ids: Callable[[], str] = lambda: new_id("message")  # noqa: E731
    base = {"thread_id": thread_id}
    return {
        "user_message_full": UserMessageItem(
            id=ids(),
            created_at=naive(),
            content=[
                UserMessageTextContent(text="Compare "),
                UserMessageTagContent(
                    id="tag_1",
                    text="@sales",
                    data={"team": "sales", "members": 3},
                    group="teams",
                    interactive=True,
                ),
                UserMessageTextContent(text=" with last year"),
            ],
            attachments=_attachments(thread_id),
            quoted_text="earlier answer",
            inference_options=InferenceOptions(tool_choice=ToolChoice(id="search"), model="m1"),
            **base,
        ),
        "user_message_aware": UserMessageItem(
            id=ids(),
            created_at=NAIVE_T0.replace(tzinfo=UTC),
            content=[UserMessageTextContent(text="plain")],
            inference_options=InferenceOptions(),
            **base,
        ),
        "assistant_message_annotated": AssistantMessageItem(
            id=ids(),
            created_at=naive(),
            content=[
                AssistantMessageContent(
                    text="See the docs.",
                    annotations=[
                        Annotation(
                            source=URLSource(
                                title="Docs", url="https://docs.example.com", attribution="ex"
                            ),
                            index=4,
                        ),
                        Annotation(source=FileSource(title="Report", filename="report.pdf")),
                        Annotation(
                            source=EntitySource(
                                title="Alice", id="ent_1", label="Person", data={"k": "v"}
                            )
                        ),
                    ],
                ),
                AssistantMessageContent(text=" Second part."),
            ],
            **base,
        ),
        "client_tool_call_pending": ClientToolCallItem(
            id=new_id("tool_call"),
            created_at=naive(),
            call_id="call_1",
            name="get_location",
            arguments={"precise": True},
            **base,
        ),
        "client_tool_call_completed": ClientToolCallItem(
            id=new_id("tool_call"),
            created_at=naive(),
            status="completed",
            call_id="call_2",
            name="get_location",
            arguments={},
            output={"lat": 52.52, "lon": 13.405},
            **base,
        ),
        "widget": WidgetItem(
            id=ids(),
            created_at=naive(),
            widget=card_widget(),
            copy_text="Order 42 shipped",
            **base,
        ),
        "generated_image": GeneratedImageItem(
            id=ids(),
            created_at=naive(),
            image=GeneratedImage(id="img_1", url="https://cdn.example.com/img_1.png"),
            **base,
        ),
        "generated_image_pending": GeneratedImageItem(id=ids(), created_at=naive(), **base),
        "structured_input": StructuredInputItem(
            id=ids(),
            created_at=naive(),
            status="answered",
            inputs=[
                StructuredInputMultipleChoice(
                    id="q1",
                    question="Which colour?",
                    options=[
                        StructuredInputMultipleChoiceOption(value="red"),
                        StructuredInputMultipleChoiceOption(value="blue"),
                    ],
                    multiple=True,
                    answer=StructuredInputAnswer(values=["red", "blue"]),
                ),
                StructuredInputFreeform(
                    id="q2",
                    question="Anything else?",
                    description="optional",
                    answer=StructuredInputAnswer(skipped=True),
                ),
            ],
            **base,
        ),
        "workflow_custom_summary": WorkflowItem(
            id=new_id("workflow"),
            created_at=naive(),
            workflow=Workflow(
                type="custom",
                expanded=True,
                summary=CustomSummary(title="Research", icon="search"),
                tasks=[
                    CustomTask(
                        title="Plan", icon="notebook", content="step 1", status_indicator="complete"
                    ),
                    SearchTask(
                        title="Searching",
                        title_query="chatkit",
                        queries=["chatkit", "store"],
                        sources=[URLSource(title="Result", url="https://example.com/r")],
                        status_indicator="loading",
                    ),
                    ThoughtTask(title="Thinking", content="Hmm."),
                    FileTask(sources=[FileSource(title="Notes", filename="notes.md")]),
                    ImageTask(title="Drawing"),
                ],
            ),
            **base,
        ),
        "workflow_duration_summary": WorkflowItem(
            id=new_id("workflow"),
            created_at=naive(),
            workflow=Workflow(
                type="reasoning",
                summary=DurationSummary(duration=12),
                tasks=[ThoughtTask(content="Reasoned.")],
            ),
            **base,
        ),
        "task": TaskItem(
            id=new_id("task"),
            created_at=naive(),
            task=CustomTask(title="Done", content="all good", status_indicator="complete"),
            **base,
        ),
        "hidden_context_string": HiddenContextItem(
            id=ids(), created_at=naive(), content="the user prefers metric units", **base
        ),
        "hidden_context_dict": HiddenContextItem(
            id=ids(),
            created_at=naive(),
            content={"big": 2**53 + 1, "small": 1.5e-10, "list": [1, "two", None], "ü": "ß"},
            **base,
        ),
        "hidden_context_tool_record": tool_record_item(
            thread_id,
            ToolCallRecord(call_id="call_9", name="add", arguments={"a": 1, "b": 2}, output=3),
        ),
        "sdk_hidden_context": SDKHiddenContextItem(
            id=new_id("sdk_hidden_context"),
            created_at=naive(),
            content="The user cancelled the stream.",
            **base,
        ),
        "end_of_turn": EndOfTurnItem(id=ids(), created_at=naive(), **base),
    }


ITEM_VARIANT_NAMES = list(item_variants("thr_x"))


# --- store helpers -----------------------------------------------------------------------------


async def saved_thread(store: PostgresStore, context: Caller, **fields: Any) -> ThreadMetadata:
    thread = make_thread(**fields)
    await store.save_thread(thread, context)
    return thread


async def added_messages(
    store: PostgresStore,
    context: Caller,
    thread_id: str,
    count: int,
    created_at: datetime | None = None,
) -> list[ThreadItem]:
    """``count`` user messages added one after the other, all stamped ``created_at``."""
    items: list[ThreadItem] = []
    for index in range(count):
        item = user_message(thread_id, f"message {index}", created_at=created_at or naive())
        await store.add_thread_item(thread_id, item, context)
        items.append(item)
    return items


async def table_rows(database: Database, table: Table, **where: Any) -> list[Row[Any]]:
    """Rows of ``table`` read directly (no store), filtered by column equality."""
    statement = select(table).where(*(table.c[name] == value for name, value in where.items()))
    async with database.session() as session:
        return list((await session.execute(statement.order_by(table.c.pk))).all())
