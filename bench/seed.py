"""Seed a PostgreSQL database with conversations at scale, fast (PostgreSQL ``COPY``).

    python -m bench.seed                          # 1,000 users x 20 conversations x 50 messages
    python -m bench.seed --quick                  # a small data set, seconds
    python -m bench.seed --users 10 --conversations 5 --messages 3 --database-url URL

The database is created when missing and migrated to head; ``threads`` and ``thread_items`` are
emptied first, so a run always gives the same shape. Rows are exactly what the ChatKit store
writes (item JSON of the SDK's types, the projected plain columns, ``created_at`` + ``pk``), and
a sample is read back through :class:`~chatkit_backend.store.PostgresStore` at the end to prove
it. Besides the regular users the data set has:

* ``bench_deep``: one user with ``--deep-conversations`` conversations (no messages), for deep
  list pages (page 1,000 of 20 needs 20,000 of them).

:func:`add_big_threads` writes 10,000-message conversations on demand (the delete benchmark
consumes them).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import migration_runner
import psycopg
from chatkit.types import (
    AssistantMessageContent,
    AssistantMessageItem,
    InferenceOptions,
    ThreadMetadata,
    UserMessageItem,
    UserMessageTextContent,
)
from chatkit_backend.caller import Caller
from chatkit_backend.db import Database
from chatkit_backend.ids import new_id
from chatkit_backend.store import PostgresStore
from sqlalchemy.engine import make_url

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/ckb_bench"
DEEP_USER = "bench_deep"
BIG_USER = "bench_big"
START = datetime(2026, 1, 1, tzinfo=UTC)
TEXT = (
    "the quick brown fox jumps over a lazy dog while planning a trip to lisbon with friends "
    "who like museums coffee trains and long walks by the river at sunset"
)
WORDS = TEXT.split()


def user_id(index: int) -> str:
    return f"bench_user_{index:05d}"


@dataclass(frozen=True)
class Shape:
    users: int
    conversations: int
    messages: int
    deep_conversations: int

    @property
    def total_messages(self) -> int:
        return self.users * self.conversations * self.messages

    @property
    def total_conversations(self) -> int:
        return self.users * self.conversations + self.deep_conversations


FULL = Shape(1000, 20, 50, 20_000)
QUICK = Shape(50, 20, 50, 2_000)


def psycopg_url(url: str) -> str:
    """A libpq URL (psycopg) for a SQLAlchemy one."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def ensure_database(url: str) -> None:
    """Create the database when it does not exist yet (connecting to ``postgres`` to do it)."""
    parsed = make_url(url)
    admin = psycopg_url(parsed.set(database="postgres").render_as_string(hide_password=False))
    with psycopg.connect(admin, autocommit=True) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (parsed.database,)
        ).fetchone()
        if exists is None:
            connection.execute(f'CREATE DATABASE "{parsed.database}"')


# --- row templates ------------------------------------------------------------------------------
# The JSON of each row is the SDK model's own dump, made once and re-filled per row: building
# a pydantic model per message would triple the seeding time without changing a byte.


def _thread_template() -> dict[str, Any]:
    return ThreadMetadata(id="", title="", created_at=START).model_dump(mode="json")


def _user_template() -> dict[str, Any]:
    item = UserMessageItem(
        id="",
        thread_id="",
        created_at=START,
        content=[UserMessageTextContent(text="")],
        inference_options=InferenceOptions(),
    )
    return item.model_dump(mode="json")


def _assistant_template() -> dict[str, Any]:
    item = AssistantMessageItem(
        id="", thread_id="", created_at=START, content=[AssistantMessageContent(text="")]
    )
    return item.model_dump(mode="json")


THREAD_JSON = _thread_template()
USER_JSON = _user_template()
ASSISTANT_JSON = _assistant_template()


def sentence(seed: int) -> str:
    """A deterministic 8-16 word sentence."""
    count = 8 + seed % 9
    return " ".join(WORDS[(seed * 7 + i * 3) % len(WORDS)] for i in range(count)).capitalize()


def thread_row(
    owner: str, thread_id: str, title: str, created: datetime, updated: datetime
) -> tuple[object, ...]:
    data = {**THREAD_JSON, "id": thread_id, "title": title, "created_at": created.isoformat()}
    return (owner, thread_id, title, created, updated, json.dumps(data))


def message_rows(
    owner: str, thread_id: str, count: int, start: datetime
) -> Iterator[tuple[object, ...]]:
    """Alternating user / assistant messages, one second apart."""
    for index in range(count):
        text = sentence(index + len(thread_id))
        at = start + timedelta(seconds=index)
        item_id = new_id("message")
        if index % 2 == 0:
            role, kind = "user", "user_message"
            data = {**USER_JSON, "content": [{"type": "input_text", "text": text}]}
        else:
            role, kind = "assistant", "assistant_message"
            content = [{**ASSISTANT_JSON["content"][0], "text": text}]
            data = {**ASSISTANT_JSON, "content": content}
        data.update(id=item_id, thread_id=thread_id, created_at=at.isoformat())
        yield (owner, thread_id, item_id, kind, role, text, None, at, json.dumps(data))


# --- seeding ------------------------------------------------------------------------------------

THREAD_COLUMNS = "user_id, id, title, created_at, updated_at, data"
ITEM_COLUMNS = "user_id, thread_id, id, type, role, content_text, tool_calls, created_at, data"


Plan = list[tuple[str, str, int, datetime]]
"""``(owner, thread id, message count, created_at)`` of each conversation to write."""


def conversations(shape: Shape) -> Plan:
    plan: Plan = []
    for user in range(shape.users):
        for number in range(shape.conversations):
            created = START + timedelta(minutes=user * shape.conversations + number)
            plan.append((user_id(user), new_id("thread"), shape.messages, created))
    for number in range(shape.deep_conversations):
        plan.append((DEEP_USER, new_id("thread"), 0, START + timedelta(seconds=number)))
    return plan


def write(connection: psycopg.Connection[Any], plan: Plan) -> tuple[float, float]:
    """COPY the plan's threads, then their messages; the seconds each took."""
    started = time.perf_counter()
    with connection.cursor() as cursor:
        with cursor.copy(f"COPY threads ({THREAD_COLUMNS}) FROM STDIN") as copy:
            for owner, thread_id, count, created in plan:
                updated = created + timedelta(seconds=max(count - 1, 0))
                title = f"Conversation {thread_id[-6:]}"
                copy.write_row(thread_row(owner, thread_id, title, created, updated))
        threads_done = time.perf_counter()
        with cursor.copy(f"COPY thread_items ({ITEM_COLUMNS}) FROM STDIN") as copy:
            for owner, thread_id, count, created in plan:
                for row in message_rows(owner, thread_id, count, created):
                    copy.write_row(row)
    return threads_done - started, time.perf_counter() - threads_done


def seed(url: str, shape: Shape) -> dict[str, float]:
    """Empty the conversation tables and write ``shape``; the seconds each phase took."""
    ensure_database(url)
    migration_runner.upgrade(url)
    plan = conversations(shape)
    started = time.perf_counter()
    with psycopg.connect(psycopg_url(url)) as connection:
        connection.execute("SET synchronous_commit = off")
        connection.execute("TRUNCATE threads, thread_items, attachments RESTART IDENTITY")
        threads_s, items_s = write(connection, plan)
        connection.commit()
        connection.autocommit = True
        analyze_started = time.perf_counter()
        connection.execute("VACUUM ANALYZE threads")
        connection.execute("VACUUM ANALYZE thread_items")
    finished = time.perf_counter()
    return {
        "threads_s": threads_s,
        "items_s": items_s,
        "analyze_s": finished - analyze_started,
        "total_s": finished - started,
    }


def add_big_threads(url: str, count: int, messages: int) -> list[str]:
    """Write ``count`` more conversations of ``messages`` messages for :data:`BIG_USER` (the
    delete benchmark consumes them); their ids."""
    plan: Plan = [
        (BIG_USER, new_id("thread"), messages, START + timedelta(days=number))
        for number in range(count)
    ]
    with psycopg.connect(psycopg_url(url)) as connection:
        write(connection, plan)
        connection.commit()
        connection.autocommit = True
        connection.execute("ANALYZE thread_items")
    return [thread_id for _, thread_id, _, _ in plan]


async def verify(url: str) -> int:
    """Read a seeded conversation back through the ChatKit store: the rows are real ChatKit."""
    database = Database.from_url(url)
    try:
        store = PostgresStore(database)
        context = Caller(user_id=user_id(0))
        threads = await store.load_threads(1, None, "asc", context)
        if not threads.data:
            return 0
        items = await store.load_thread_items(threads.data[0].id, None, 100, "asc", context)
        return len(items.data)
    finally:
        await database.dispose()


def parse_args(argv: list[str] | None = None) -> tuple[str, Shape]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    )
    parser.add_argument("--quick", action="store_true", help="small data set (CI)")
    parser.add_argument("--users", type=int)
    parser.add_argument("--conversations", type=int, help="per user")
    parser.add_argument("--messages", type=int, help="per conversation")
    parser.add_argument("--deep-conversations", type=int, help=f"of the user {DEEP_USER}")
    args = parser.parse_args(argv)
    base = QUICK if args.quick else FULL
    overrides = {
        name: value
        for name in Shape.__dataclass_fields__
        if (value := getattr(args, name)) is not None
    }
    return args.database_url, Shape(**{**base.__dict__, **overrides})


def main(argv: list[str] | None = None) -> None:
    url, shape = parse_args(argv)
    print(
        f"seeding {shape.users} users x {shape.conversations} conversations x "
        f"{shape.messages} messages + {shape.deep_conversations} conversations of {DEEP_USER}"
    )
    timings = seed(url, shape)
    loaded = asyncio.run(verify(url))
    rate = shape.total_messages / timings["items_s"] if timings["items_s"] else 0.0
    print(f"  conversations  {shape.total_conversations:>10,}  {timings['threads_s']:7.1f} s")
    print(
        f"  messages       {shape.total_messages:>10,}  {timings['items_s']:7.1f} s"
        f"  ({rate:,.0f} rows/s)"
    )
    print(f"  vacuum analyze {'':>10}  {timings['analyze_s']:7.1f} s")
    print(f"  total          {'':>10}  {timings['total_s']:7.1f} s")
    print(f"  check: {loaded} items of a seeded conversation loaded through PostgresStore")


if __name__ == "__main__":
    main()
