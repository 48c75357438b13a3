"""TaskRepository on both backends: the operations, and that users never see each other's tasks."""

from __future__ import annotations

import pytest
from chat_app.task_repository import TITLE_MAX_CHARS, TaskRepository
from chatkit_backend.caller import Caller
from chatkit_backend.db import Database
from chatkit_backend.errors import BadRequest, NotFound


async def test_add_list_complete_update_delete(any_database: Database, alice: Caller) -> None:
    tasks = TaskRepository(any_database)
    milk = await tasks.add(alice.user_id, "  buy milk ", "two litres")
    dog = await tasks.add(alice.user_id, "walk the dog")
    assert (milk.title, milk.description, milk.completed) == ("buy milk", "two litres", False)

    assert [t.id for t in await tasks.list(alice.user_id)] == [milk.id, dog.id]

    done = await tasks.complete(alice.user_id, milk.id)
    assert done.completed
    assert done.updated_at >= milk.updated_at
    assert [t.id for t in await tasks.list(alice.user_id, include_completed=False)] == [dog.id]
    assert [t.id for t in await tasks.list(alice.user_id)] == [milk.id, dog.id]

    renamed = await tasks.update(alice.user_id, dog.id, title="walk the cat")
    assert (renamed.title, renamed.description) == ("walk the cat", None)
    described = await tasks.update(alice.user_id, dog.id, description="around the block")
    assert (described.title, described.description) == ("walk the cat", "around the block")
    cleared = await tasks.update(alice.user_id, dog.id, description="")
    assert cleared.description is None

    deleted = await tasks.delete(alice.user_id, milk.id)
    assert deleted.id == milk.id
    assert [t.id for t in await tasks.list(alice.user_id)] == [dog.id]
    with pytest.raises(NotFound):
        await tasks.get(alice.user_id, milk.id)


async def test_foreign_task_ids_behave_like_missing_ones(
    any_database: Database, alice: Caller, bob: Caller
) -> None:
    tasks = TaskRepository(any_database)
    mine = await tasks.add(alice.user_id, "alice's secret plan", "do not share")

    assert await tasks.list(bob.user_id) == []
    for attempt in (
        tasks.get(bob.user_id, mine.id),
        tasks.complete(bob.user_id, mine.id),
        tasks.update(bob.user_id, mine.id, title="hijacked"),
        tasks.delete(bob.user_id, mine.id),
    ):
        with pytest.raises(NotFound) as caught:
            await attempt
        assert caught.value.message == f"Task {mine.id} not found."

    missing_id = mine.id + 1_000_000
    with pytest.raises(NotFound) as missing:
        await tasks.complete(alice.user_id, missing_id)
    assert missing.value.message == f"Task {missing_id} not found."

    assert await tasks.get(alice.user_id, mine.id) == mine


async def test_invalid_input_is_rejected(any_database: Database, alice: Caller) -> None:
    tasks = TaskRepository(any_database)
    with pytest.raises(BadRequest):
        await tasks.add(alice.user_id, "   ")
    with pytest.raises(BadRequest):
        await tasks.add(alice.user_id, "x" * (TITLE_MAX_CHARS + 1))
    task = await tasks.add(alice.user_id, "x" * TITLE_MAX_CHARS)
    with pytest.raises(BadRequest):
        await tasks.update(alice.user_id, task.id)
    with pytest.raises(BadRequest):
        await tasks.update(alice.user_id, task.id, title="")
    assert [t.title for t in await tasks.list(alice.user_id)] == ["x" * TITLE_MAX_CHARS]


async def test_listing_is_bounded(any_database: Database, alice: Caller) -> None:
    tasks = TaskRepository(any_database)
    for number in range(5):
        await tasks.add(alice.user_id, f"task {number}")
    listed = await tasks.list(alice.user_id, limit=3)
    assert [t.title for t in listed] == ["task 0", "task 1", "task 2"]
