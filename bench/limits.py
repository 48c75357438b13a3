"""What the per-user limit check costs a chat turn: the same turn with limits on and off.

    python -m bench.limits            # 40 turns per mode, to bench/results/limits.{md,json}
    python -m bench.limits --quick    # 10 turns per mode, printed only

Two chat apps (``create_app``, the offline model) over one PostgreSQL scratch database on
``TEST_DATABASE_URL``'s server (created, migrated and dropped), driven in-process over httpx's ASGI
transport so the figures are the app's own work, not a socket's. One has the default limits (the
turn rate raised so one user's many turns are all admitted: the bench measures the check, not a
refusal), the other all three limits at 0, which skips the check entirely. Turns alternate
between the two, each a simple-protocol message of the same user read to ``[DONE]``. Per mode:
the median turn time, and the SQL statements and transactions the app's engine ran per turn,
counted by engine events (a round trip per statement, plus ``BEGIN`` and ``COMMIT`` per
transaction). The difference is what the limits add: the admitting upsert before the turn and the
finishing update after it, each in a transaction of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.report import Machine, Row, publish

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "bench" / "results"
SECTION = "9. Per-user limits (one turn)"
DEFINITIONS = (__doc__ or "")[(__doc__ or "").index("Two chat apps") :].strip()
BENCH_SECRET = "bench-limits-secret-of-at-least-32-bytes"  # noqa: S105 - a local bench key
BENCH_USER = "bench-limits-user"


def token() -> str:
    import jwt

    now = int(time.time())
    claims = {"sub": BENCH_USER, "iat": now, "exp": now + 3600}
    return str(jwt.encode(claims, BENCH_SECRET, algorithm="HS256"))


@dataclass
class Mode:
    """One app and what its engine did during the measured turns."""

    name: str
    client: httpx.AsyncClient
    counts: dict[str, int]
    times_ms: list[float]

    def per_turn(self, key: str) -> float:
        return self.counts[key] / len(self.times_ms)


def counted_app(database_url: str, limits: bool, data_dir: Path) -> tuple[Any, dict[str, int]]:
    """The chat app with its own engine, whose statements and transactions are counted."""
    from chat_app.app import create_app
    from chatkit_backend.db import Database
    from chatkit_backend.settings import Settings
    from sqlalchemy import event

    defaults = Settings()
    settings = Settings(
        database_url=database_url,
        jwt_secret=BENCH_SECRET,
        data_dir=data_dir,
        model="offline",
        user_turns_per_minute=100_000 if limits else 0,
        user_concurrent_turns=defaults.user_concurrent_turns if limits else 0,
        user_tokens_per_day=defaults.user_tokens_per_day if limits else 0,
    )
    database = Database.from_url(database_url, settings)
    counts = {"statements": 0, "transactions": 0}

    def statement(*_: Any) -> None:
        counts["statements"] += 1

    def transaction(*_: Any) -> None:
        counts["transactions"] += 1

    event.listen(database.engine.sync_engine, "before_cursor_execute", statement)
    event.listen(database.engine.sync_engine, "begin", transaction)
    return create_app(settings=settings, database=database), counts


async def one_turn(mode: Mode) -> None:
    started = time.perf_counter()
    async with mode.client.stream("POST", "/chatkit", json={"message": "hello"}) as response:
        assert response.status_code == 200, response.status_code
        body = b"".join([chunk async for chunk in response.aiter_bytes()])
    assert body.endswith(b"data: [DONE]\n\n")
    mode.times_ms.append((time.perf_counter() - started) * 1000)


async def measure(database_url: str, turns: int, data_dir: Path) -> list[Mode]:
    modes = []
    for name, limits in (("limits on", True), ("limits off", False)):
        app, counts = counted_app(database_url, limits, data_dir)
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://bench",
            headers={"Authorization": f"Bearer {token()}"},
            timeout=60,
        )
        modes.append(Mode(name, client, counts, []))
    for mode in modes:  # warm-up: imports, the first MCP session, pooled connections
        await one_turn(mode)
        mode.times_ms.clear()
        mode.counts.update(statements=0, transactions=0)
    for _ in range(turns):
        for mode in modes:
            await one_turn(mode)
    for mode in modes:
        await mode.client.aclose()
    return modes


def rows(on: Mode, off: Mode) -> list[Row]:
    def trips(mode: Mode) -> float:
        return mode.per_turn("statements") + 2 * mode.per_turn("transactions")

    baseline = "limits off"
    on_ms, off_ms = statistics.median(on.times_ms), statistics.median(off.times_ms)
    return [
        Row(
            SECTION,
            "turn time p50",
            on_ms,
            baseline,
            off_ms,
            "ms",
            f"the check adds {on_ms - off_ms:.2f} ms ({len(on.times_ms)} turns each)",
        ),
        Row(SECTION, "SQL statements per turn", on.per_turn("statements"), baseline,
            off.per_turn("statements"), "count"),
        Row(SECTION, "round trips per turn", trips(on), baseline, trips(off), "count",
            "statements + BEGIN/COMMIT of each transaction"),
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    import tempfile

    import migration_runner

    from tests.support.databases import scratch_database

    with scratch_database("ckb_bench_limits") as database_url:
        machine = Machine.describe(database_url)
        migration_runner.upgrade(database_url)
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="bench-limits-") as folder:
            on, off = asyncio.run(measure(database_url, 10 if args.quick else 40, Path(folder)))
    details = {mode.name: {"times_ms": mode.times_ms, **mode.counts} for mode in (on, off)}
    publish(
        "limits", machine, rows(on, off), details, started, DEFINITIONS, RESULTS_DIR, args.quick
    )


if __name__ == "__main__":
    main()
