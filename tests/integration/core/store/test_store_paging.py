"""Keyset paging, run identically over the two paged collections: threads and thread items.

``listing`` is one collection of a fresh user (their threads, or the items of one thread), so the
same contract is checked on both: order by creation time with insertion order breaking ties,
exclusive cursors in both directions, ``has_more`` and ``after`` at every edge.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from chatkit.types import Page
from chatkit_backend.caller import Caller
from chatkit_backend.store import MAX_PAGE_SIZE, PostgresStore

from tests.integration.core.store.store_samples import (
    added_messages,
    make_thread,
    naive,
    saved_thread,
    user_message,
)

COUNT = 5


@dataclass
class Listing:
    """A paged collection: ``create`` adds entries stamped with the given times, in order."""

    create: Callable[[list[datetime]], Awaitable[list[str]]]
    page: Callable[[str | None, int, str], Awaitable[Page[Any]]]


@pytest.fixture(params=["threads", "items"])
async def listing(request: pytest.FixtureRequest, store: PostgresStore, alice: Caller) -> Listing:
    if request.param == "threads":

        async def create_threads(times: list[datetime]) -> list[str]:
            return [(await saved_thread(store, alice, created_at=at)).id for at in times]

        async def threads_page(after: str | None, limit: int, order: str) -> Page[Any]:
            return await store.load_threads(limit, after, order, alice)

        return Listing(create_threads, threads_page)

    thread = await saved_thread(store, alice)

    async def create_items(times: list[datetime]) -> list[str]:
        ids = []
        for at in times:
            item = user_message(thread.id, created_at=at)
            await store.add_thread_item(thread.id, item, alice)
            ids.append(item.id)
        return ids

    async def items_page(after: str | None, limit: int, order: str) -> Page[Any]:
        return await store.load_thread_items(thread.id, after, limit, order, alice)

    return Listing(create_items, items_page)


def in_order(ids: list[str], order: str) -> list[str]:
    return ids if order == "asc" else ids[::-1]


async def walk(listing: Listing, limit: int, order: str) -> list[Page[Any]]:
    """Every page from the start, following ``after`` until ``has_more`` is False."""
    pages = [await listing.page(None, limit, order)]
    while pages[-1].has_more:
        assert len(pages) <= 100, "paging does not terminate"
        pages.append(await listing.page(pages[-1].after, limit, order))
    return pages


def ids_of(page: Page[Any]) -> list[str]:
    return [entry.id for entry in page.data]


@pytest.mark.parametrize("order", ["asc", "desc"])
async def test_entries_written_in_a_tight_loop_with_one_timestamp_keep_insertion_order(
    listing: Listing, order: str
) -> None:
    ids = await listing.create([naive()] * 25)

    page = await listing.page(None, 100, order)

    assert ids_of(page) == in_order(ids, order)
    assert page.has_more is False


@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize("limit", [1, 2, 7, 25])
async def test_walking_all_pages_visits_every_entry_once_in_order(
    listing: Listing, order: str, limit: int
) -> None:
    ids = await listing.create([naive()] * 25)

    pages = await walk(listing, limit, order)

    assert [entry for page in pages for entry in ids_of(page)] == in_order(ids, order)
    assert all(len(page.data) == limit for page in pages[:-1])
    # The SDK's contract: ``after`` continues a page that has more, and is None on the last one.
    assert [page.after for page in pages] == [ids_of(page)[-1] for page in pages[:-1]] + [None]
    assert [page.has_more for page in pages] == [True] * (len(pages) - 1) + [False]


@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize(
    ("limit", "returned", "has_more"),
    [(COUNT - 1, COUNT - 1, True), (COUNT, COUNT, False), (COUNT + 1, COUNT, False)],
    ids=["count-1", "count", "count+1"],
)
async def test_has_more_edges(
    listing: Listing, order: str, limit: int, returned: int, has_more: bool
) -> None:
    ids = await listing.create([naive(seconds) for seconds in range(COUNT)])

    page = await listing.page(None, limit, order)

    assert ids_of(page) == in_order(ids, order)[:returned]
    assert page.has_more is has_more
    assert page.after == (ids_of(page)[-1] if has_more else None)


@pytest.mark.parametrize("order", ["asc", "desc"])
async def test_has_more_edges_after_a_cursor(listing: Listing, order: str) -> None:
    ids = in_order(await listing.create([naive(s) for s in range(COUNT)]), order)
    rest = ids[2:]

    exact = await listing.page(ids[1], len(rest), order)
    short = await listing.page(ids[1], len(rest) - 1, order)

    assert (ids_of(exact), exact.has_more) == (rest, False)
    assert (ids_of(short), short.has_more) == (rest[:-1], True)


@pytest.mark.parametrize("order", ["asc", "desc"])
async def test_cursor_is_exclusive_in_both_directions(listing: Listing, order: str) -> None:
    ids = await listing.create([naive(s) for s in range(COUNT)])
    middle = ids[2]

    page = await listing.page(middle, 10, order)

    expected = ids[3:] if order == "asc" else ids[:2][::-1]
    assert ids_of(page) == expected
    assert middle not in ids_of(page)


@pytest.mark.parametrize("order", ["asc", "desc"])
async def test_creation_time_orders_before_insertion_order(listing: Listing, order: str) -> None:
    late, early, middle = await listing.create([naive(20), naive(0), naive(10)])

    page = await listing.page(None, 10, order)

    assert ids_of(page) == in_order([early, middle, late], order)


async def test_cursor_of_the_last_entry_gives_an_empty_final_page(listing: Listing) -> None:
    ids = await listing.create([naive(s) for s in range(COUNT)])

    page = await listing.page(ids[-1], 10, "asc")

    assert (page.data, page.has_more, page.after) == ([], False, None)


@pytest.mark.parametrize("order", ["asc", "desc"])
async def test_empty_collection_is_an_empty_page(listing: Listing, order: str) -> None:
    page = await listing.page(None, 10, order)

    assert (page.data, page.has_more, page.after) == ([], False, None)


async def test_unknown_cursor_gives_an_empty_page(listing: Listing) -> None:
    await listing.create([naive(s) for s in range(COUNT)])

    page = await listing.page("thr_does_not_exist", 10, "asc")

    assert (page.data, page.has_more, page.after) == ([], False, None)


@pytest.mark.parametrize("limit", [0, -5])
async def test_a_limit_below_one_still_advances(listing: Listing, limit: int) -> None:
    """Never an empty page that claims more: a client looping on has_more must progress."""
    ids = await listing.create([naive(s) for s in range(2)])

    page = await listing.page(None, limit, "asc")

    assert ([entry.id for entry in page.data], page.has_more, page.after) == (ids[:1], True, ids[0])


async def test_a_huge_limit_is_capped(listing: Listing) -> None:
    ids = await listing.create([naive(s) for s in range(MAX_PAGE_SIZE + 1)])

    page = await listing.page(None, 100_000_000, "asc")

    assert [entry.id for entry in page.data] == ids[:MAX_PAGE_SIZE]
    assert page.has_more


async def test_an_unknown_order_is_refused(listing: Listing) -> None:
    with pytest.raises(ValueError, match="order"):
        await listing.page(None, 10, "sideways")


# --- collection-specific cursor scoping ------------------------------------------------------


async def test_item_cursor_from_another_thread_gives_an_empty_page(
    store: PostgresStore, alice: Caller
) -> None:
    first = await saved_thread(store, alice)
    second = await saved_thread(store, alice)
    await added_messages(store, alice, first.id, 3)
    [elsewhere] = await added_messages(store, alice, second.id, 1)

    page = await store.load_thread_items(first.id, elsewhere.id, 10, "asc", alice)

    assert (page.data, page.has_more) == ([], False)


async def test_items_of_other_threads_are_not_listed(store: PostgresStore, alice: Caller) -> None:
    first = await saved_thread(store, alice)
    second = await saved_thread(store, alice)
    mine = await added_messages(store, alice, first.id, 3)
    await added_messages(store, alice, second.id, 3)

    page = await store.load_thread_items(first.id, None, 10, "asc", alice)

    assert page.data == mine


async def test_threads_page_returns_metadata_and_resaving_keeps_the_position(
    store: PostgresStore, alice: Caller
) -> None:
    threads = [make_thread(created_at=naive(s), title=f"t{s}") for s in range(3)]
    for thread in threads:
        await store.save_thread(thread, alice)
    threads[0].title = "renamed"
    await store.save_thread(threads[0], alice)

    page = await store.load_threads(10, None, "asc", alice)

    assert page.data == threads
