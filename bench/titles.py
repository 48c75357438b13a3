"""Generated titles: a thread's first turn with title generation on, next to the same turn off.

    python -m bench.titles            # 15 rounds each, to bench/results/titles.{md,json}
    python -m bench.titles --quick    # 5 rounds each, printed only

Two chat servers in this process (the real app under uvicorn, over PostgreSQL in a scratch
database on ``TEST_DATABASE_URL``'s server), both answering through the ``openai`` client over
loopback HTTP to the fake OpenAI server (Responses API): one with generated titles (``TITLE_MODEL``
unset), one with ``TITLE_MODEL=off``. Rounds alternate between them, each turn after a short
pause (``SETTLE_S``: both servers being in this process, one's after-response work must not land
on the other's turn). In each ``on`` round the
fake holds the title request for ``TITLE_DELAY_S`` (a slow title model), so a title request that
delayed the answer would show in its first delta. Each round is a ChatKit ``threads.create``,
read to the end of its stream:

- first delta: from the request to the first ``assistant_message.content_part.text_delta``;
- stream end: from the request to the end of the stream (with titles on, it waits for the title,
  at most ``TITLE_TIMEOUT_SECONDS``, after the answer).

Figures are medians of the rounds. The fake answers at once, so the figures are this backend's
own cost, not a model's.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass
from typing import Any

import httpx

from bench.report import Machine, Row, publish
from bench.run import RESULTS_DIR

SECTION = "9. Generated titles (fake model over HTTP)"
DEFINITIONS = (__doc__ or "")[(__doc__ or "").index("Two chat servers") :].strip()
TITLE_DELAY_S = 0.3
SETTLE_S = 0.2
"""Pause before each turn: both servers run in this process, so the work one does after its
response (the limits' finish, logs, the pool) would otherwise land on the other's turn."""
DELTA_MARK = b"assistant_message.content_part.text_delta"


@dataclass
class Turn:
    first_delta_ms: float
    end_ms: float
    titled: bool


def first_turn(client: httpx.Client, headers: dict[str, str]) -> Turn:
    from tests.e2e.chat.chat_support import user_input

    body = {"type": "threads.create", "params": {"input": user_input("Plan a picnic for Saturday")}}
    started = time.perf_counter()
    first: float | None = None
    received = b""
    with client.stream("POST", "/chatkit", json=body, headers=headers) as response:
        assert response.status_code == 200, response.read()
        for chunk in response.iter_bytes():
            received += chunk
            if first is None and DELTA_MARK in received:
                first = (time.perf_counter() - started) * 1000
    end = (time.perf_counter() - started) * 1000
    assert first is not None, received[-500:]
    return Turn(first, end, b"About Plan a picnic" in received or b"Bench title" in received)


def measure(database_url: str, rounds: int) -> dict[str, list[Turn]]:
    from tests.e2e.chat.chat_support import ChatServerThread, factory_with, server_settings
    from tests.support.fake_openai import FakeOpenAI, Reply
    from tests.support.tokens import auth_header

    headers = auth_header("bench-titles")
    measured: dict[str, list[Turn]] = {"on": [], "off": []}
    with FakeOpenAI() as fake:
        common: dict[str, Any] = {"openai_base_url": fake.base_url, "openai_api": "responses"}
        servers = {
            "on": ChatServerThread(server_settings(database_url, **common), factory_with(None)),
            "off": ChatServerThread(
                server_settings(database_url, title_model="off", **common), factory_with(None)
            ),
        }
        for server in servers.values():
            server.start()
        try:
            clients = {
                mode: httpx.Client(base_url=server.url, timeout=60)
                for mode, server in servers.items()
            }
            for round_number in range(rounds + 1):  # the first round warms both up
                for mode, client in clients.items():
                    if mode == "on":
                        fake.unstreamed.queue(Reply(deltas=("Bench title",), hang=TITLE_DELAY_S))
                    time.sleep(SETTLE_S)
                    turn = first_turn(client, headers)
                    assert turn.titled == (mode == "on"), mode
                    if round_number:
                        measured[mode].append(turn)
            for client in clients.values():
                client.close()
        finally:
            for server in servers.values():
                server.stop()
    return measured


def rows(measured: dict[str, list[Turn]]) -> list[Row]:
    def median(mode: str, field: str) -> float:
        return statistics.median(getattr(turn, field) for turn in measured[mode])

    baseline = "titles off (TITLE_MODEL=off)"
    count = len(measured["on"])
    return [
        Row(
            SECTION,
            "first delta, titles on (slow title model)",
            median("on", "first_delta_ms"),
            baseline,
            median("off", "first_delta_ms"),
            "ms",
            f"medians of {count} rounds each, alternating; title held {TITLE_DELAY_S} s",
        ),
        Row(
            SECTION,
            "stream end, titles on",
            median("on", "end_ms"),
            baseline,
            median("off", "end_ms"),
            "ms",
            "the stream waits for the title after the answer",
        ),
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    import migration_runner

    from tests.support.databases import scratch_database

    with scratch_database("ckb_bench_titles") as database_url:
        migration_runner.upgrade(database_url)
        machine = Machine.describe(database_url)
        started = time.perf_counter()
        measured = measure(database_url, 5 if args.quick else 15)
    details = {mode: [vars(turn) for turn in turns] for mode, turns in measured.items()}
    publish(
        "titles", machine, rows(measured), details, started, DEFINITIONS, RESULTS_DIR, args.quick
    )


if __name__ == "__main__":
    main()
