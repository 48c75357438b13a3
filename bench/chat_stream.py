"""Benchmark of the chat function's streaming path: model -> agent -> ChatKit -> uvicorn -> client.

    python bench/chat_stream.py            # 2,000-delta answers, 20 turns per mode
    python bench/chat_stream.py --quick    # the same with 5 turns (CI)

The server runs in a process of its own (uvicorn on 127.0.0.1, the real app, PostgreSQL in a
scratch database) with a model that produces its deltas as fast as it can (no sleeps). The
first delta carries the ``time.perf_counter()`` at which the model produced it (a system-wide
monotonic clock on Linux), so the client can tell the model-to-client delay without sharing a
process. Printed per mode:

* events/s: SSE events the client read per second, from the first delta to the end of the stream
  (goal: >= 5,000/s);
* first-delta delay: model yield -> client receipt, p50 and p90 over the turns (goal p50 < 10 ms);
* turn time: request sent -> stream end;
* turn cost for a 10-delta and a N-delta answer, and for a turn that lists the user's tasks (the
  offline model calls ``list_tasks``, the answer carries the task-list widget), counted in the
  server process by the engine:
  SQL statements (``before_cursor_execute``) and round trips (statements plus the transaction
  commands psycopg sends: ``BEGIN``, ``COMMIT``, ``ROLLBACK``, and the pool's pre-ping
  ``SELECT 1``); goal: the same small numbers for both.

The model is the offline model (:class:`~chat_app.offline_model.OfflineModel`, so tracing is off
as in a real offline run) except that a message ``deltas=N`` makes it stream N deltas as fast as
it can; :func:`chat_server` runs this server for the suite (``python -m bench``) too.

Modes: ``streaming`` is the product with a model that lets the event loop run between deltas, as
any model read from a socket does; ``burst`` is the same with a model that never yields until its
whole answer is out, so nothing (in any asyncio server) can send its first delta before the
runner has processed the entire burst; ``buffered`` is a baseline in which the server holds the
whole response back and sends it in one piece (what Mangum, or any non-streaming adapter, does):
same work, but nothing reaches the client before the answer is complete.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt

ROOT = Path(__file__).resolve().parents[1]
for path in (
    ROOT / "functions" / "chat",
    ROOT / "functions" / "conversations",
    ROOT / "functions" / "migrate",
    ROOT / "layers" / "shared",
    ROOT,
):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

BENCH_SECRET = "bench-only-hs256-secret-0123456789abcdef"  # noqa: S105 - the bench's own server
BUFFER_HEADER = b"x-bench-buffered"
REQUEST_PREFIX = "deltas="


# --- server process ----------------------------------------------------------------------------


def stamped_deltas(count: int) -> Iterator[str]:
    """``count`` deltas; the first is the model's clock when it is produced."""
    yield f"{time.perf_counter():.9f} "
    for index in range(1, count):
        yield f"w{index} "


def requested(model_input: Any) -> tuple[int, bool] | None:
    """What the last user message asks for: ``deltas=N`` and, with `` burst``, no yielding;
    ``None`` when it is an ordinary message (the offline model answers it)."""
    for item in reversed(model_input):
        if isinstance(item, dict) and item.get("role") == "user":
            content = item.get("content")
            text = (
                content
                if isinstance(content, str)
                else "".join(part.get("text", "") for part in content or [])
            )
            if not text.startswith(REQUEST_PREFIX):
                return None
            count, _, burst = text[len(REQUEST_PREFIX) :].partition(" ")
            return int(count), burst == "burst"
    return None


class EngineCounter:
    """What the engine sends to PostgreSQL, counted with its events (one server process).

    psycopg (not autocommit) sends ``BEGIN`` before the first statement of each transaction and
    ``COMMIT``/``ROLLBACK`` only when one is open, so each SQLAlchemy ``begin``, ``commit`` and
    ``rollback`` event is one command on the wire; ``pool_pre_ping`` runs ``SELECT 1`` on the
    raw connection at checkout, outside the statement events, so the dialect's ``do_ping`` is
    wrapped to count it. Round trips = all of these.
    """

    KINDS = ("statements", "begins", "commits", "rollbacks", "pings")

    def __init__(self, engine: Any) -> None:
        from sqlalchemy import event

        self.counts = dict.fromkeys(self.KINDS, 0)
        for name, kind in (
            ("before_cursor_execute", "statements"),
            ("begin", "begins"),
            ("commit", "commits"),
            ("rollback", "rollbacks"),
        ):
            event.listen(engine, name, self._counting(kind))
        dialect = engine.dialect
        ping = dialect.do_ping

        def counted_ping(dbapi_connection: Any) -> bool:
            self.counts["pings"] += 1
            return bool(ping(dbapi_connection))

        dialect.do_ping = counted_ping

    def _counting(self, kind: str) -> Any:
        def count(*_args: Any) -> None:
            self.counts[kind] += 1

        return count

    def snapshot(self) -> dict[str, int]:
        return {**self.counts, "round_trips": sum(self.counts.values())}


def serve(port: int, database_url: str) -> None:
    """The chat app under uvicorn, with the bench model and two bench-only routes around it."""
    import uvicorn
    from chat_app.agent import AgentFactory
    from chat_app.app import create_app
    from chat_app.offline_model import OfflineModel
    from chatkit_backend.auth import build_authenticator
    from chatkit_backend.db import Database
    from chatkit_backend.settings import Settings

    from tests.e2e.chat.chat_support import streamed_reply

    class BenchModel(OfflineModel):
        async def stream_response(
            self, system_instructions: Any, input: Any, *args: Any, **kwargs: Any
        ) -> AsyncIterator[Any]:
            request = requested(input) if not isinstance(input, str) else None
            if request is None:
                async for offline_event in super().stream_response(
                    system_instructions, input, *args, **kwargs
                ):
                    yield offline_event
                return
            count, burst = request
            step = streamed_reply(stamped_deltas(count))
            assert callable(step.stream_events)
            async for response_event in step.stream_events(None):  # type: ignore[arg-type]
                yield response_event
                if not burst:
                    await asyncio.sleep(0)  # like a socket read: others may run in between

    settings = Settings(
        database_url=database_url,
        jwt_secret=BENCH_SECRET,
        openai_api_key=None,
        openai_api_key_secret_arn=None,
        openai_base_url=None,
        mcp_servers=[],
        # One bench user runs every stream (100 at once in the concurrency bench): the per-user
        # limits are off here, and what they cost a turn is bench/limits.py's figure.
        user_turns_per_minute=0,
        user_concurrent_turns=0,
        user_tokens_per_day=0,
    )
    database = Database.from_url(database_url, settings)
    counter = EngineCounter(database.engine.sync_engine)
    chat = create_app(
        settings=settings,
        database=database,
        authenticator=build_authenticator(settings),
        agent_factory=AgentFactory(settings, database, model=BenchModel()),
    )

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/bench/sql":
            body = json.dumps(counter.snapshot()).encode()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": body})
            return
        if scope["type"] == "http" and BUFFER_HEADER in dict(scope["headers"]):
            await chat(scope, receive, buffering(send))
            return
        await chat(scope, receive, send)

    uvicorn.run(
        app, host="127.0.0.1", port=port, log_level="warning", access_log=False, backlog=4096
    )


def buffering(send: Any) -> Any:
    """A ``send`` that holds the whole response back and sends it as one body at the end."""
    start: dict[str, Any] = {}
    body: list[bytes] = []

    async def buffered_send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            start.update(message)
            return
        body.append(message.get("body", b""))
        if not message.get("more_body", False):
            await send(start)
            await send({"type": "http.response.body", "body": b"".join(body)})

    return buffered_send


# --- client ------------------------------------------------------------------------------------


class Turn:
    """What the client measured for one streamed answer."""

    def __init__(self, first_delay: float, events: int, stream_seconds: float, total: float):
        self.first_delay = first_delay
        self.events = events
        self.stream_seconds = stream_seconds
        self.total = total


MODES: dict[str, tuple[str, dict[str, str]]] = {
    "streaming": ("", {}),
    "burst": (" burst", {}),
    "buffered": ("", {BUFFER_HEADER.decode(): "1"}),
}
"""Mode -> (request suffix, extra headers): the product with a model that lets the event loop
run between deltas (as a network stream does), the same with a model that never yields until
its whole answer is out, and the buffered baseline."""


async def one_turn(
    client: Any, headers: dict[str, str], thread_id: str, deltas: int, suffix: str = ""
) -> Turn:
    body = {
        "type": "threads.add_user_message",
        "params": {
            "thread_id": thread_id,
            "input": {
                "content": [{"type": "input_text", "text": f"{REQUEST_PREFIX}{deltas}{suffix}"}],
                "attachments": [],
                "inference_options": {},
            },
        },
    }
    sent = time.perf_counter()
    first_at = stamp = 0.0
    events = delta_events = 0
    buffer = b""
    async with client.stream("POST", "/chatkit", json=body, headers=headers) as response:
        assert response.status_code == 200, response.status_code
        async for chunk in response.aiter_raw():
            now = time.perf_counter()
            buffer += chunk
            *complete, buffer = buffer.split(b"\n\n")
            for data in complete:
                events += 1
                if b'.text_delta"' in data:
                    delta_events += 1
                    if not first_at:
                        first_at = now
                        delta = json.loads(data.removeprefix(b"data: "))["update"]["delta"]
                        stamp = float(delta.split()[0])
    end = time.perf_counter()
    assert delta_events == deltas, (delta_events, deltas)
    return Turn(first_at - stamp, events, end - first_at, end - sent)


WIDGET_TURN = "list my tasks"
"""A message the offline model answers with a ``list_tasks`` call, hence a task-list widget."""


async def widget_turn(client: Any, headers: dict[str, str], thread_id: str) -> None:
    """One turn that calls a todo tool and streams its widget (checked to be there)."""
    body = {
        "type": "threads.add_user_message",
        "params": {
            "thread_id": thread_id,
            "input": {
                "content": [{"type": "input_text", "text": WIDGET_TURN}],
                "attachments": [],
                "inference_options": {},
            },
        },
    }
    async with client.stream("POST", "/chatkit", json=body, headers=headers) as response:
        assert response.status_code == 200, response.status_code
        text = (await response.aread()).decode()
    assert '"type":"widget"' in text, "the turn streamed no widget"


def token(user: str = "bench-user") -> str:
    now = int(time.time())
    return str(jwt.encode({"sub": user, "iat": now, "exp": now + 3600}, BENCH_SECRET))


def create_body(text: str) -> dict[str, Any]:
    """A ChatKit ``threads.create`` request whose first message is ``text``."""
    content = [{"type": "input_text", "text": text}]
    return {
        "type": "threads.create",
        "params": {"input": {"content": content, "attachments": [], "inference_options": {}}},
    }


TurnCost = dict[str, int]
""":meth:`EngineCounter.snapshot` keys -> how many one turn sent."""


async def turn_cost(
    client: Any, headers: dict[str, str], thread_id: str, deltas: int | None
) -> TurnCost:
    """What one turn of ``deltas`` deltas (None: :data:`WIDGET_TURN`) sent to PostgreSQL
    (server-side engine counts)."""
    before = (await client.get("/bench/sql")).json()
    if deltas is None:
        await widget_turn(client, headers, thread_id)
    else:
        await one_turn(client, headers, thread_id, deltas)
    after = (await client.get("/bench/sql")).json()
    return {kind: int(after[kind] - before[kind]) for kind in after}


@dataclass
class StreamResults:
    """Per mode the measured turns, and the turn cost per answer length."""

    deltas: int
    modes: dict[str, list[Turn]]
    cost: dict[int, TurnCost]
    widget_cost: TurnCost | None = None


async def measure(port: int, turns: int, deltas: int, short: int = 10) -> StreamResults:
    """Turn cost for ``short`` and ``deltas`` deltas, then ``turns`` turns in each mode."""
    headers = {"Authorization": f"Bearer {token()}"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
        created = await client.post(
            "/chatkit", headers=headers, json=create_body(f"{REQUEST_PREFIX}{short}")
        )
        thread_id = json.loads(created.text.split("\n\n")[0].removeprefix("data: "))["thread"]["id"]
        await one_turn(client, headers, thread_id, deltas)  # warm-up (and prepared statements)
        cost = {size: await turn_cost(client, headers, thread_id, size) for size in (short, deltas)}
        await widget_turn(client, headers, thread_id)  # warm-up: the todo server, its queries
        widget_cost = await turn_cost(client, headers, thread_id, None)
        modes = {
            mode: [
                await one_turn(client, {**headers, **extra}, thread_id, deltas, suffix)
                for _ in range(turns)
            ]
            for mode, (suffix, extra) in MODES.items()
        }
    return StreamResults(deltas, modes, cost, widget_cost)


@dataclass
class ModeFigures:
    """One mode's turns, summarised: medians (and p90 of the first-delta delay)."""

    first_delta_p50_ms: float
    first_delta_p90_ms: float
    stream_rate: float
    """Events per second from the first delta to the end of the stream."""
    turn_rate: float
    """Events per second over the whole turn (request sent -> last event)."""
    turn_ms: float
    events: int


def summarize(measured: list[Turn]) -> ModeFigures:
    delays = sorted(turn.first_delay * 1000 for turn in measured)
    return ModeFigures(
        first_delta_p50_ms=statistics.median(delays),
        first_delta_p90_ms=percentile(delays, 0.9),
        stream_rate=statistics.median(
            turn.events / turn.stream_seconds if turn.stream_seconds else float("inf")
            for turn in measured
        ),
        turn_rate=statistics.median(turn.events / turn.total for turn in measured),
        turn_ms=statistics.median(turn.total * 1000 for turn in measured),
        events=measured[0].events,
    )


def percentile(ordered: list[float], fraction: float) -> float:
    """The nearest-rank percentile of an already sorted list."""
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def report(results: StreamResults, turns: int) -> None:
    print(f"chat stream benchmark: {results.deltas} deltas per answer, {turns} turns per mode")
    for size, cost in results.cost.items():
        print(f"  turn cost, {size:>5} deltas: {cost}")
    if results.widget_cost is not None:
        print(f"  turn cost, {WIDGET_TURN!r} (tool call + widget): {results.widget_cost}")
    for mode, measured in results.modes.items():
        figures = summarize(measured)
        rate_text = f"{figures.stream_rate:,.0f}/s" if mode != "buffered" else "(one write)"
        print(
            f"  {mode:9}  events/s {rate_text:>11}  first delta p50 "
            f"{figures.first_delta_p50_ms:7.2f} ms  p90 {figures.first_delta_p90_ms:7.2f} ms  "
            f"turn {figures.turn_ms:7.1f} ms  ({figures.events} events)"
        )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until_ready(port: int, server: subprocess.Popen[bytes]) -> None:
    """Poll ``/health`` until the server answers (it imports the agent stack first)."""
    for _ in range(1200):
        if server.poll() is not None:
            raise RuntimeError("bench server exited")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError("bench server did not start")


@contextmanager
def chat_server(database_url: str) -> Iterator[int]:
    """The bench chat server in a process of its own on a migrated database; its port.

    Its stdout (the metrics' EMF lines) goes nowhere; warnings and errors reach stderr.
    """
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(port), "--database-url", database_url],
        env={**os.environ, "LOG_LEVEL": "WARNING", "POWERTOOLS_LOG_LEVEL": "WARNING"},
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_until_ready(port, server)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 turns per mode (CI)")
    parser.add_argument("--deltas", type=int, default=2000)
    parser.add_argument("--turns", type=int, default=None)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.database_url)
        return

    import migration_runner

    from tests.support.databases import scratch_database

    turns = args.turns or (5 if args.quick else 20)
    with scratch_database("ckb_bench") as database_url:
        migration_runner.upgrade(database_url)
        with chat_server(database_url) as port:
            report(asyncio.run(measure(port, turns, args.deltas)), turns)


if __name__ == "__main__":
    main()
