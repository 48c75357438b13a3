"""Server-side latency of the conversations routes at scale, against the issue's goals.

    python -m bench.seed && python -m bench.crud_latency     # 1M messages (seed once)
    python -m bench.crud_latency --quick                       # seeds a small set itself (CI)

The app is the real one (JWT auth, routing, validation, PostgreSQL) called in-process through
httpx's ASGI transport; the figure is the time spent *inside* the ASGI app, from the call to the
last byte of the response, so client and network costs are not in it. Each route is called many
times on random rows of the seeded data after a few warm-up calls; p50 and p99 are printed with
the goal of each line:

* every route: p50 under 5 ms;
* page 1,000 (20 per page) of a user with 20,000 conversations: the cursor page within 1.5x of
  the first page (the offset page is the baseline it is compared with);
* items of a 10,000-message conversation, 50 per page: the messages query of the last page with
  a cursor against the same query with ``OFFSET`` (timed as the query in its own transaction,
  since the route pages by cursor only), next to the first page;
* deleting a conversation of 10,000 messages: under 100 ms.

Routes compared with each other run interleaved, so machine noise hits them alike. The run
changes the data: it writes fresh 10,000-message conversations for the delete line (5; 2 when
quick; one more is kept for the items pages), and renames and deletes seeded conversations;
re-seed for a pristine data set.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import random
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import httpx
import jwt
from chatkit_backend import observability
from chatkit_backend.auth import build_authenticator
from chatkit_backend.db import Database
from chatkit_backend.settings import Settings
from chatkit_backend.tables import ITEMS, THREADS
from conversations_app.api import create_app
from conversations_app.cursors import encode_cursor
from pydantic import SecretStr
from sqlalchemy import Select, event, func, select, tuple_
from starlette.types import ASGIApp, Receive, Scope, Send

from bench.seed import BIG_USER, DEEP_USER, FULL, QUICK, add_big_threads, seed

BENCH_SECRET = "bench-only-hs256-secret-0123456789abcdef"  # noqa: S105 (a local benchmark)
PAGE = 20
DEEP_PAGE = 1000
GOAL_P50_MS = 5.0
GOAL_DEEP_RATIO = 1.5
GOAL_BIG_DELETE_MS = 100.0
BIG_THREAD_MESSAGES = 10_000


class TimedApp:
    """An ASGI wrapper that times each HTTP request and counts the SQL statements it ran."""

    def __init__(self, app: ASGIApp, database: Database) -> None:
        self.app = app
        self.statements = 0
        self.last: tuple[float, int] = (0.0, 0)
        event.listen(database.engine.sync_engine, "before_cursor_execute", self._count)

    def _count(self, *args: Any) -> None:
        self.statements += 1

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        statements, started = self.statements, time.perf_counter()
        await self.app(scope, receive, send)
        self.last = ((time.perf_counter() - started) * 1000, self.statements - statements)


@dataclass
class Result:
    name: str
    samples: list[float] = field(default_factory=list)
    statements: int = 0
    goal: str = ""
    met: bool | None = None

    @property
    def p50(self) -> float:
        return statistics.median(self.samples)

    @property
    def p99(self) -> float:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


Call = Callable[[], Awaitable[Any]]


@dataclass(frozen=True)
class Sample:
    """What a call that is not an app request measured itself (see :meth:`Bench.run`)."""

    ms: float
    statements: int


class Bench:
    """The real app over the benchmark database, called in-process; its output goes nowhere
    (the JSON log line and the metrics are still produced, so their cost is measured)."""

    def __init__(self, url: str) -> None:
        self.settings = Settings(database_url=url, jwt_secret=SecretStr(BENCH_SECRET))
        self.database = Database.from_url(url, self.settings)
        app = create_app(
            authenticator=build_authenticator(self.settings),
            database=self.database,
            settings=self.settings,
        )
        self.sink = open(os.devnull, "w")  # noqa: SIM115 (closed in close())
        handler = observability.get_logger().registered_handler
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(self.sink)
        self.timed = TimedApp(app, self.database)
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.timed), base_url="http://bench"
        )
        self._tokens: dict[str, dict[str, str]] = {}

    def auth(self, user: str) -> dict[str, str]:
        if user not in self._tokens:
            claims = {"sub": user, "exp": int(time.time()) + 24 * 3600}
            token = jwt.encode(claims, BENCH_SECRET, algorithm="HS256")
            self._tokens[user] = {"Authorization": f"Bearer {token}"}
        return self._tokens[user]

    async def request(self, method: str, url: str, user: str, json: Any = None) -> Any:
        response = await self.client.request(method, url, headers=self.auth(user), json=json)
        if response.status_code >= 300:
            raise RuntimeError(f"{method} {url}: {response.status_code} {response.text}")
        return response.json()

    async def run(self, scenarios: dict[str, Sequence[Call]], warmup: int = 5) -> list[Result]:
        """Time each scenario's calls; scenarios run interleaved (one call of each in turn) so
        those compared with each other see the same machine. The first ``warmup`` calls of each
        are not counted. A call is timed inside the app, unless it returns a :class:`Sample`."""
        results = {name: Result(name) for name in scenarios}
        rounds = max(len(calls) for calls in scenarios.values())
        with contextlib.redirect_stdout(self.sink):  # the metrics' EMF lines
            for index in range(rounds):
                for name, calls in scenarios.items():
                    if index >= len(calls):
                        continue
                    outcome = await calls[index]()
                    if index >= warmup or len(calls) <= warmup:
                        elapsed, statements = (
                            (outcome.ms, outcome.statements)
                            if isinstance(outcome, Sample)
                            else self.timed.last
                        )
                        results[name].samples.append(elapsed)
                        results[name].statements = statements
        return list(results.values())

    async def close(self) -> None:
        await self.client.aclose()
        await self.database.dispose()
        self.sink.close()


async def conversations_of(
    database: Database, owner_like: str, limit: int
) -> list[tuple[str, str]]:
    """``(owner, id)`` of up to ``limit`` random conversations whose owner matches."""
    query = (
        select(THREADS.c.user_id, THREADS.c.id)
        .where(THREADS.c.user_id.like(owner_like))
        .order_by(func.random())
        .limit(limit)
    )
    async with database.session() as session:
        return [(row.user_id, row.id) for row in (await session.execute(query)).all()]


async def deep_position(database: Database, position: int) -> tuple[int, str]:
    """How many conversations the deep user has, and the cursor just before ``position``."""
    async with database.session() as session:
        count = await session.scalar(
            select(func.count()).select_from(THREADS).where(THREADS.c.user_id == DEEP_USER)
        )
        row = (
            await session.execute(
                select(THREADS.c.updated_at, THREADS.c.pk)
                .where(THREADS.c.user_id == DEEP_USER)
                .order_by(THREADS.c.updated_at.desc(), THREADS.c.pk.desc())
                .offset(position - 1)
                .limit(1)
            )
        ).one()
    return count or 0, encode_cursor("conversations", row.updated_at, row.pk)


def items_query(thread_id: str, limit: int) -> Select[Any]:
    """The messages route's page query (same columns, filter and order), without its start."""
    return (
        select(ITEMS.c.id, ITEMS.c.role, ITEMS.c.content_text, ITEMS.c.created_at, ITEMS.c.pk)
        .where(
            ITEMS.c.user_id == BIG_USER,
            ITEMS.c.thread_id == thread_id,
            ITEMS.c.role.is_not(None),
        )
        .order_by(ITEMS.c.created_at, ITEMS.c.pk)
        .limit(limit + 1)
    )


async def timed_query(database: Database, query: Select[Any]) -> Sample:
    """Run ``query`` in a transaction of its own, as the route does; the time it took."""
    started = time.perf_counter()
    async with database.session() as session:
        (await session.execute(query)).all()
    return Sample((time.perf_counter() - started) * 1000, 1)


async def item_pages(database: Database, thread_id: str, limit: int) -> dict[str, Select[Any]]:
    """First page, last page by cursor, last page by offset (the baseline) of ``thread_id``."""
    query = items_query(thread_id, limit)
    async with database.session() as session:
        total = await session.scalar(select(func.count()).select_from(query.limit(None).subquery()))
        offset = max((total or 0) - limit, 0)
        before = (await session.execute(query.offset(offset - 1).limit(1))).one()
    page = offset // limit + 1
    return {
        f"items of {total:,}: page 1": query,
        f"items of {total:,}: page {page}, offset": query.offset(offset),
        f"items of {total:,}: page {page}, cursor": query.where(
            tuple_(ITEMS.c.created_at, ITEMS.c.pk) > (before.created_at, before.pk)
        ),
    }


KEYS = (
    "threads page 1",
    "threads deep offset",
    "threads deep cursor",
    "items page 1",
    "items deep offset",
    "items deep cursor",
    "messages page",
    "big delete",
)
"""The results the suite (``python -m bench``) reports, by these names."""


async def measure(
    url: str, iterations: int, big_threads: list[str], items_thread: str
) -> tuple[list[Result], dict[str, Result]]:
    """Every route's figures (in print order) and the suite's results by :data:`KEYS`."""
    bench = Bench(url)
    rng = random.Random(42)
    try:
        regular = await conversations_of(bench.database, "bench_user_%", 3 * iterations + 50)
        if len(regular) < 3 * iterations:
            raise SystemExit("not enough seeded data: run `python -m bench.seed` first")
        to_read, to_rename, to_delete = (
            regular[:iterations],
            regular[iterations : 2 * iterations],
            regular[2 * iterations : 3 * iterations],
        )
        users = sorted({owner for owner, _ in regular})
        deep_count, _ = await deep_position(bench.database, 1)
        page = min(DEEP_PAGE, deep_count // PAGE)
        offset = (page - 1) * PAGE
        _, cursor = await deep_position(bench.database, offset)

        def each(items: Sequence[Any], make: Callable[[Any], Awaitable[Any]]) -> list[Any]:
            return [lambda item=item: make(item) for item in items]

        def repeat(make: Callable[[], Awaitable[Any]]) -> list[Any]:
            return [make for _ in range(iterations)]

        base = "/api/conversations"
        reads = await bench.run(
            {
                "list, first page (20)": each(
                    [rng.choice(users) for _ in range(iterations)],
                    lambda user: bench.request("GET", f"{base}?limit={PAGE}", user),
                ),
                "recent/first": each(
                    [rng.choice(users) for _ in range(iterations)],
                    lambda user: bench.request("GET", f"{base}/recent/first", user),
                ),
                "get with 50 messages": each(
                    to_read, lambda row: bench.request("GET", f"{base}/{row[1]}", row[0])
                ),
                "messages page (50)": each(
                    to_read,
                    lambda row: bench.request("GET", f"{base}/{row[1]}/messages?limit=50", row[0]),
                ),
            }
        )
        deep_first, deep_offset, deep_cursor = await bench.run(
            {
                f"{deep_count:,} conversations: page 1": repeat(
                    lambda: bench.request("GET", f"{base}?limit={PAGE}", DEEP_USER)
                ),
                f"{deep_count:,} conversations: page {page}, offset": repeat(
                    lambda: bench.request("GET", f"{base}?limit={PAGE}&offset={offset}", DEEP_USER)
                ),
                f"{deep_count:,} conversations: page {page}, cursor": repeat(
                    lambda: bench.request("GET", f"{base}?limit={PAGE}&after={cursor}", DEEP_USER)
                ),
            }
        )
        writes = await bench.run(
            {
                "create": each(
                    [rng.choice(users) for _ in range(iterations)],
                    lambda user: bench.request("POST", base, user, {"title": "bench"}),
                ),
                "rename": each(
                    to_rename,
                    lambda row: bench.request(
                        "PATCH", f"{base}/{row[1]}", row[0], {"title": "renamed"}
                    ),
                ),
                "delete (50 messages)": each(
                    to_delete, lambda row: bench.request("DELETE", f"{base}/{row[1]}", row[0])
                ),
            }
        )
        pages = await item_pages(bench.database, items_thread, 50)
        items_first, items_offset, items_cursor = await bench.run(
            {
                name: [partial(timed_query, bench.database, query)] * iterations
                for name, query in pages.items()
            }
        )
        (big_delete,) = await bench.run(
            {
                f"delete ({BIG_THREAD_MESSAGES:,} messages)": each(
                    big_threads,
                    lambda thread_id: bench.request("DELETE", f"{base}/{thread_id}", BIG_USER),
                )
            },
            warmup=0,
        )
        items = [items_first, items_offset, items_cursor]
        results = [*reads, deep_first, deep_offset, deep_cursor, *items, *writes, big_delete]
    finally:
        await bench.close()

    for result in results:
        if result not in (deep_offset, deep_cursor, items_offset, items_cursor, big_delete):
            result.goal, result.met = f"p50 < {GOAL_P50_MS:g} ms", result.p50 < GOAL_P50_MS
    ratio = deep_cursor.p50 / deep_first.p50
    deep_cursor.goal = f"{ratio:.2f}x first page (< {GOAL_DEEP_RATIO:g}x)"
    deep_cursor.met = ratio < GOAL_DEEP_RATIO and deep_cursor.p50 < GOAL_P50_MS
    deep_offset.goal = f"baseline: {deep_offset.p50 / deep_cursor.p50:.1f}x the cursor page"
    items_cursor.goal = f"{items_cursor.p50 / items_first.p50:.2f}x first page"
    items_offset.goal = f"baseline: {items_offset.p50 / items_cursor.p50:.1f}x the cursor page"
    big_delete.goal = f"p50 < {GOAL_BIG_DELETE_MS:g} ms"
    big_delete.met = bool(big_delete.samples) and big_delete.p50 < GOAL_BIG_DELETE_MS
    keyed = (deep_first, deep_offset, deep_cursor, items_first, items_offset, items_cursor)
    by_key = dict(zip(KEYS, (*keyed, reads[3], big_delete), strict=True))
    return results, by_key


def big_threads_for(url: str, quick: bool) -> tuple[list[str], str]:
    """Fresh 10,000-message conversations: those the delete line consumes, and one to page."""
    *to_delete, to_page = add_big_threads(url, (2 if quick else 5) + 1, BIG_THREAD_MESSAGES)
    return to_delete, to_page


def print_table(results: list[Result]) -> None:
    width = max(len(result.name) for result in results)
    print(f"{'route':<{width}}  {'n':>5}  {'sql':>3}  {'p50 ms':>7}  {'p99 ms':>7}  goal")
    for result in results:
        mark = "" if result.met is None else "  ok" if result.met else "  MISSED"
        print(
            f"{result.name:<{width}}  {len(result.samples):>5}  {result.statements:>3}  "
            f"{result.p50:>7.2f}  {result.p99:>7.2f}  {result.goal}{mark}"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/ckb_bench"
        ),
    )
    parser.add_argument("--quick", action="store_true", help="seed a small set, fewer calls (CI)")
    parser.add_argument("--seed", action="store_true", help="seed the full data set first")
    parser.add_argument("--iterations", type=int, help="calls per route (default 1000; quick 200)")
    args = parser.parse_args(argv)
    if args.quick or args.seed:
        shape = QUICK if args.quick else FULL
        print(f"seeding {shape.total_messages:,} messages ...")
        seed(args.database_url, shape)
    iterations = args.iterations or (200 if args.quick else 1000)
    big_threads, items_thread = big_threads_for(args.database_url, args.quick)
    results, _ = asyncio.run(measure(args.database_url, iterations, big_threads, items_thread))
    print_table(results)


if __name__ == "__main__":
    main()
