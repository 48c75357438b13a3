"""What goes in comes out equal: every item type, every thread status, naive and aware times.

Also checks the plain columns projected next to the JSON (what the REST view reads).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from chatkit.types import Page, Thread, ThreadMetadata
from chatkit_backend.caller import Caller
from chatkit_backend.db import Database
from chatkit_backend.item_projection import TOOL_TEXT_LIMIT
from chatkit_backend.store import PostgresStore
from chatkit_backend.tables import ITEMS, THREADS
from chatkit_backend.tool_calls import ToolCallRecord
from sqlalchemy import select

from tests.integration.core.store.store_samples import (
    ITEM_VARIANT_NAMES,
    item_variants,
    make_thread,
    naive,
    saved_thread,
    table_rows,
    thread_variants,
    tool_record_item,
    user_message,
)

# Loading a Card goes through the SDK's deprecated named widget classes; not this suite's concern.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Direct usage of named widget classes:DeprecationWarning"
)


@pytest.mark.parametrize("variant", ITEM_VARIANT_NAMES)
@pytest.mark.parametrize("write", ["add_thread_item", "save_item"])
async def test_every_item_type_round_trips(
    store: PostgresStore, alice: Caller, variant: str, write: str
) -> None:
    thread = await saved_thread(store, alice)
    item = item_variants(thread.id)[variant]

    await getattr(store, write)(thread.id, item, alice)

    loaded = await store.load_item(thread.id, item.id, alice)
    assert type(loaded) is type(item)
    assert loaded == item
    page = await store.load_thread_items(thread.id, None, 10, "asc", alice)
    assert page.data == [item]


async def test_all_item_types_share_one_thread_in_insertion_order(
    store: PostgresStore, alice: Caller
) -> None:
    thread = await saved_thread(store, alice)
    items = list(item_variants(thread.id).values())  # all stamped at the same instant
    for item in items:
        await store.add_thread_item(thread.id, item, alice)

    page = await store.load_thread_items(thread.id, None, 100, "asc", alice)

    assert page.data == items


@pytest.mark.parametrize("variant", list(thread_variants()))
async def test_every_thread_shape_round_trips(
    store: PostgresStore, alice: Caller, variant: str
) -> None:
    thread = thread_variants()[variant]

    await store.save_thread(thread, alice)

    loaded = await store.load_thread(thread.id, alice)
    assert loaded == thread
    listed = await store.load_threads(10, None, "asc", alice)
    assert listed.data == [thread]


async def test_naive_times_stay_naive_and_aware_times_stay_aware(
    store: PostgresStore, alice: Caller
) -> None:
    aware = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    naive_thread = await saved_thread(store, alice, created_at=naive())
    aware_thread = await saved_thread(store, alice, created_at=aware)
    naive_item = user_message(naive_thread.id, created_at=naive())
    aware_item = user_message(naive_thread.id, created_at=aware)
    for item in (naive_item, aware_item):
        await store.add_thread_item(naive_thread.id, item, alice)

    assert (await store.load_thread(naive_thread.id, alice)).created_at.tzinfo is None
    assert (await store.load_thread(aware_thread.id, alice)).created_at == aware
    assert (await store.load_thread(aware_thread.id, alice)).created_at.tzinfo is not None
    loaded_naive = await store.load_item(naive_thread.id, naive_item.id, alice)
    loaded_aware = await store.load_item(naive_thread.id, aware_item.id, alice)
    assert loaded_naive.created_at == naive_item.created_at
    assert loaded_naive.created_at.tzinfo is None
    assert loaded_aware.created_at == aware
    assert loaded_aware.created_at.tzinfo is not None


async def test_saving_a_thread_with_items_stores_only_its_metadata(
    store: PostgresStore, database: Database, alice: Caller
) -> None:
    metadata = make_thread(title="With items")
    message = user_message(metadata.id)
    thread = Thread(**metadata.model_dump(), items=Page(data=[message]))

    await store.save_thread(thread, alice)

    loaded = await store.load_thread(thread.id, alice)
    assert type(loaded) is ThreadMetadata
    assert loaded == metadata
    assert (await store.load_thread_items(thread.id, None, 10, "asc", alice)).data == []
    [row] = await table_rows(database, THREADS, user_id=alice.user_id, id=thread.id)
    assert "items" not in row.data
    assert row.title == "With items"


# --- projected columns -----------------------------------------------------------------------

PROJECTIONS: dict[str, tuple[str | None, str | None, list[dict[str, Any]] | None]] = {
    "user_message_full": ("user", "Compare  with last year", None),
    "user_message_aware": ("user", "plain", None),
    "assistant_message_annotated": ("assistant", "See the docs. Second part.", None),
    "client_tool_call_pending": (
        "tool",
        None,
        [{"id": "call_1", "name": "get_location", "arguments": {"precise": True}, "output": None}],
    ),
    "client_tool_call_completed": (
        "tool",
        '{"lat": 52.52, "lon": 13.405}',
        [
            {
                "id": "call_2",
                "name": "get_location",
                "arguments": {},
                "output": {"lat": 52.52, "lon": 13.405},
            }
        ],
    ),
    "hidden_context_tool_record": (
        "tool",
        "3",
        [{"id": "call_9", "name": "add", "arguments": {"a": 1, "b": 2}, "output": 3}],
    ),
    "hidden_context_string": (None, None, None),
    "hidden_context_dict": (None, None, None),
    "widget": ("widget", "Order 42 shipped", None),
    "workflow_custom_summary": (None, None, None),
    "sdk_hidden_context": (None, None, None),
    "end_of_turn": (None, None, None),
}


@pytest.mark.parametrize("variant", list(PROJECTIONS))
async def test_items_are_projected_into_plain_columns(
    store: PostgresStore, database: Database, alice: Caller, variant: str
) -> None:
    thread = await saved_thread(store, alice)
    item = item_variants(thread.id)[variant]

    await store.add_thread_item(thread.id, item, alice)

    [row] = await table_rows(database, ITEMS, user_id=alice.user_id, id=item.id)
    assert (row.role, row.content_text, row.tool_calls) == PROJECTIONS[variant]
    assert row.type == item.type
    assert row.thread_id == thread.id
    assert row.feedback is None
    # No tool calls is SQL NULL, not the JSON document ``null`` (both read back as None).
    async with database.session() as session:
        sql_null = (
            await session.execute(
                select(ITEMS.c.tool_calls.is_(None)).where(
                    ITEMS.c.user_id == alice.user_id, ITEMS.c.id == item.id
                )
            )
        ).scalar_one()
    assert sql_null is (PROJECTIONS[variant][2] is None)


async def test_failed_tool_call_projects_its_error(
    store: PostgresStore, database: Database, alice: Caller
) -> None:
    thread = await saved_thread(store, alice)
    record = ToolCallRecord(call_id="c1", name="fetch", arguments={"u": "x"}, error="timed out")
    item = tool_record_item(thread.id, record)

    await store.add_thread_item(thread.id, item, alice)

    [row] = await table_rows(database, ITEMS, user_id=alice.user_id, id=item.id)
    assert row.role == "tool"
    assert row.content_text == "timed out"
    assert row.tool_calls == [
        {"id": "c1", "name": "fetch", "arguments": {"u": "x"}, "output": None, "error": "timed out"}
    ]


async def test_long_tool_output_is_clipped_in_the_text_but_kept_whole_in_the_call(
    store: PostgresStore, database: Database, alice: Caller
) -> None:
    thread = await saved_thread(store, alice)
    output = "x" * (TOOL_TEXT_LIMIT * 3)
    item = tool_record_item(thread.id, ToolCallRecord(call_id="c", name="dump", output=output))

    await store.add_thread_item(thread.id, item, alice)

    [row] = await table_rows(database, ITEMS, user_id=alice.user_id, id=item.id)
    assert len(row.content_text) == TOOL_TEXT_LIMIT
    assert row.content_text.endswith("…")
    assert row.tool_calls[0]["output"] == output
    assert await store.load_item(thread.id, item.id, alice) == item
