"""Round trips to PostgreSQL per chat turn, counted on the wire by a proxy in front of the server.

    python -m bench.wire_count

The chat app (:func:`bench.turn_overhead.chat_server`, the real model path in front of
:mod:`bench.fake_model`) reaches PostgreSQL through a counting TCP proxy
(:class:`tests.support.tcp_proxy.TcpProxy` with an observer). A round trip is one flight of
bytes from the server to PostgreSQL after PostgreSQL last spoke on that connection (a query
and its answer, a ``BEGIN``, a pre-ping ...), so it counts what the driver really sends, whatever
the engine's events say. Counted per turn, warm: an existing thread with a short and with a
long answer (equal: the cost is flat with the answer's length), a new thread, and a turn whose
model calls a todo tool (the answer carries a widget); the median of a few turns of each.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from bench.fake_model import WIDGET_REQUEST
from bench.turn_overhead import BURST_DELTAS, Client, chat_server, spawn
from tests.support.tcp_proxy import TcpProxy

WARM_UP_ROUNDS = 12
"""Turns of each kind before counting: psycopg prepares a statement on its fifth use on a
connection (one extra round trip, once), and the pool has two connections, both used in a turn
(a new message's history is read beside the message's write), so a statement reaches its fifth
use on each of them only after several rounds. Steady state is what a warm sandbox sees (behind
RDS Proxy, ``DB_POOLER``, nothing is prepared at all)."""

COUNTED_TURNS = 5
"""Turns counted per figure (the median is reported)."""


class WireCounter:
    """Round trips and connections seen by the proxy (thread-safe enough: GIL-atomic updates)."""

    def __init__(self) -> None:
        self.round_trips = 0
        self.connections = 0
        self._last: dict[object, bool] = {}

    def observe(self, connection: object, upstream: bool) -> None:
        previous = self._last.get(connection)
        if previous is None:
            self.connections += 1
        if upstream and previous is not True:
            self.round_trips += 1
        self._last[connection] = upstream


@contextmanager
def counting_proxy(database_url: str) -> Iterator[tuple[str, WireCounter]]:
    """A counting proxy to ``database_url``'s server on its own thread; the proxied URL."""
    url = make_url(database_url)
    counter = WireCounter()
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432, counter.observe)
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(proxy.start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, name="counting-proxy", daemon=True)
    thread.start()
    ready.wait(10)
    try:
        yield url.set(port=proxy.port).render_as_string(hide_password=False), counter
    finally:
        asyncio.run_coroutine_threadsafe(proxy.cut(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


@dataclass
class WireCounts:
    """Round trips of one turn of each kind (and connections opened meanwhile)."""

    existing_thread: int
    existing_thread_long_answer: int
    new_thread: int
    widget_turn: int
    connections_opened: int


async def count_turns(port: int, counter: WireCounter) -> WireCounts:
    client = Client(port)
    try:

        async def counted(turn: Callable[[], Awaitable[object]]) -> int:
            """The median over :data:`COUNTED_TURNS` turns: a one-off (a statement's first
            preparation on one of the pool's connections) does not decide the figure."""
            counts = []
            for _ in range(COUNTED_TURNS):
                before = counter.round_trips
                await turn()
                counts.append(counter.round_trips - before)
            return int(statistics.median(counts))

        thread_id = await client.new_thread()
        for _ in range(WARM_UP_ROUNDS):
            for warm_up in ("hello", WIDGET_REQUEST, f"burst {BURST_DELTAS}"):
                await client.turn(thread_id, warm_up)
            await client.new_thread()
        connections = counter.connections
        figures = WireCounts(
            existing_thread=await counted(lambda: client.turn(thread_id, "hello")),
            existing_thread_long_answer=await counted(
                lambda: client.turn(thread_id, f"burst {BURST_DELTAS}")
            ),
            new_thread=await counted(client.new_thread),
            widget_turn=await counted(lambda: client.turn(thread_id, WIDGET_REQUEST)),
            connections_opened=0,
        )
        figures.connections_opened = counter.connections - connections
        return figures
    finally:
        await client.close()


def measure(database_url: str, code_root: Path | None = None) -> WireCounts:
    with (
        counting_proxy(database_url) as (proxied, counter),
        spawn("bench.fake_model") as model_port,
        chat_server(proxied, f"http://127.0.0.1:{model_port}/v1", code_root) as port,
    ):
        return asyncio.run(count_turns(port, counter))


def main() -> None:
    import migration_runner

    from tests.support.databases import scratch_database

    code_root = Path(sys.argv[1]) if len(sys.argv) > 1 else None
    with scratch_database("ckb_bench") as database_url:
        migration_runner.upgrade(database_url)
        print(json.dumps(asdict(measure(database_url, code_root)), indent=2))


if __name__ == "__main__":
    main()
