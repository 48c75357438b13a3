"""Concurrent chat streams on one server process, and what the store holds afterwards.

    python -m bench.concurrency            # 100 concurrent streams
    python -m bench.concurrency --quick    # 20 (CI)

Each stream is a ChatKit ``threads.create`` of its own user (a fresh JWT ``sub``) answered by the
offline model through the bench chat server (:func:`bench.chat_stream.chat_server`: one uvicorn
process, PostgreSQL). All streams are sent at once; the baseline is the same number of streams
sent one after another to the same server. Per run: every stream must end with the assistant
message done, the time to the first event (``thread.created``) p50/p99, the wall time; and, in
the database afterwards, each stream's user must own exactly one thread holding one user and
one assistant message (nothing lost, nothing doubled).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from dataclasses import dataclass

import httpx
import psycopg

from bench.chat_stream import chat_server, create_body, percentile, token
from bench.seed import psycopg_url

PROMPT = "Hello! What can you do?"


@dataclass(frozen=True)
class Stream:
    """One stream as the client saw it."""

    user: str
    first_event_s: float
    total_s: float
    completed: bool


@dataclass(frozen=True)
class StreamRun:
    """A batch of streams (concurrent or sequential) and the store's rows for it afterwards."""

    streams: list[Stream]
    wall_s: float
    intact_users: int
    """Users whose rows are exactly one thread with one user and one assistant message."""

    @property
    def completed(self) -> int:
        return sum(stream.completed for stream in self.streams)

    def first_event_ms(self, fraction: float) -> float:
        ordered = sorted(stream.first_event_s * 1000 for stream in self.streams)
        return statistics.median(ordered) if fraction == 0.5 else percentile(ordered, fraction)

    @property
    def intact(self) -> bool:
        count = len(self.streams)
        return self.completed == count and self.intact_users == count


async def one_stream(client: httpx.AsyncClient, user: str) -> Stream:
    """Send one ``threads.create`` and read its SSE stream to the end."""
    headers = {"Authorization": f"Bearer {token(user)}"}
    sent = time.perf_counter()
    first = 0.0
    done = False
    buffer = b""
    async with client.stream("POST", "/chatkit", json=create_body(PROMPT), headers=headers) as r:
        if r.status_code != 200:
            return Stream(user, 0.0, time.perf_counter() - sent, False)
        async for chunk in r.aiter_raw():
            first = first or time.perf_counter()
            buffer += chunk
            *complete, buffer = buffer.split(b"\n\n")
            for data in complete:
                event = json.loads(data.removeprefix(b"data: "))
                item = event.get("item") or {}
                if event.get("type") == "thread.item.done" and item.get("type") == (
                    "assistant_message"
                ):
                    done = True
    return Stream(user, first - sent, time.perf_counter() - sent, done)


def intact_users(database_url: str, prefix: str) -> int:
    """Users of ``prefix`` owning exactly one thread with one user and one assistant message."""
    query = """
        SELECT t.user_id
        FROM threads t
        LEFT JOIN thread_items i ON i.user_id = t.user_id AND i.thread_id = t.id
        WHERE t.user_id LIKE %s
        GROUP BY t.user_id
        HAVING count(DISTINCT t.id) = 1
           AND count(*) FILTER (WHERE i.role = 'user') = 1
           AND count(*) FILTER (WHERE i.role = 'assistant') = 1
    """
    with psycopg.connect(psycopg_url(database_url)) as connection:
        return len(connection.execute(query, (f"{prefix}%",)).fetchall())


async def run_streams(port: int, database_url: str, count: int, concurrent: bool) -> StreamRun:
    """``count`` streams of fresh users, all at once or one after another."""
    prefix = f"bench_{'concurrent' if concurrent else 'sequential'}_{time.time_ns()}_"
    users = [f"{prefix}{index:04d}" for index in range(count)]
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", timeout=300, limits=limits
    ) as client:
        await one_stream(client, f"{prefix}warmup")  # the connection and the server's warm path
        started = time.perf_counter()
        if concurrent:
            streams = list(await asyncio.gather(*(one_stream(client, user) for user in users)))
        else:
            streams = [await one_stream(client, user) for user in users]
        wall = time.perf_counter() - started
    intact = intact_users(database_url, prefix) - 1  # the warm-up user is intact too
    return StreamRun(streams, wall, intact)


async def measure(port: int, database_url: str, count: int) -> tuple[StreamRun, StreamRun]:
    """The concurrent run and its sequential baseline, on the same server."""
    concurrent = await run_streams(port, database_url, count, concurrent=True)
    sequential = await run_streams(port, database_url, count, concurrent=False)
    return concurrent, sequential


def main(argv: list[str] | None = None) -> None:
    import migration_runner

    from tests.support.databases import scratch_database

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 streams (CI)")
    parser.add_argument("--streams", type=int, help="default 100; quick 20")
    args = parser.parse_args(argv)
    count = args.streams or (20 if args.quick else 100)
    with scratch_database("ckb_bench") as database_url:
        migration_runner.upgrade(database_url)
        with chat_server(database_url) as port:
            runs = asyncio.run(measure(port, database_url, count))
    for name, run in zip(("concurrent", "sequential"), runs, strict=True):
        print(
            f"{name:10}  {run.completed}/{count} completed, {run.intact_users}/{count} intact in "
            f"the store; first event p50 {run.first_event_ms(0.5):.1f} ms, "
            f"p99 {run.first_event_ms(0.99):.1f} ms; wall {run.wall_s:.2f} s"
        )


if __name__ == "__main__":
    main()
