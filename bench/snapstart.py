"""The SnapStart restore path of each function next to a warm request, fresh process per run.

    python -m bench.snapstart            # 7 processes per function, to bench/results/snapstart.md
    python -m bench.snapstart --quick    # 5 processes per function, printed only
    python -m bench.snapstart --compare-tree /tmp/base   # and another checkout, same rounds

The full mode also runs :mod:`bench.cold_start` (same runs, same ``--compare-tree``) so that
``results/snapstart.md`` holds the cold start without SnapStart next to the restore path.

Each run is a new Python process that plays one SnapStart lifecycle the way Lambda drives it:

1. init: import the entry module and build the app (the chat app's lifespan startup too), i.e.
   what runs once per published version before the snapshot;
2. the before-snapshot hook (chat: ``POST`` on the Web Adapter's before-checkpoint path from
   loopback; conversations: the hooks registered for ``snapshot_restore_py``);
3. the after-restore hook, then the first request of the "restored" sandbox: the figure that
   matters, since a restored sandbox's first user waits for exactly these two;
4. warm requests in the same process (the baseline: what the same request costs when nothing is
   cold), and for the chat function a first and warm chat turn (offline model, one tool call).

What this cannot show: Lambda's own restore of the memory image (tens to hundreds of ms,
depending on the snapshot's size, paid outside the process) and the page faults of touching
restored memory. The figures are the app's share of a restore, on this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import migration_runner

from bench import cold_start
from bench.cold_start import ROOT, Run, crud_input, run_child, token
from bench.seed import DEFAULT_DATABASE_URL, ensure_database

DESCRIPTION = (__doc__ or "")[(__doc__ or "").index("Each run is") :].strip()
RESULTS_FILE = ROOT / "bench" / "results" / "snapstart.md"
GOAL_RESTORE_MS = 50.0
BROKEN_RESTORE_MS = 250.0
"""A restore path this slow means the hooks no longer keep the app warm (e.g. an import or a
build moved past the snapshot): the suite fails on it. Below, timings are reported only."""
WARM_REQUESTS = 20
WARM_TURNS = 5
HOOK_ENV = {
    "AWS_LWA_SNAPSTART_BEFORE_CHECKPOINT_PATH": "/_lwa/before-checkpoint",
    "AWS_LWA_SNAPSTART_AFTER_RESTORE_PATH": "/_lwa/after-restore",
}

# Each child writes {"import_ms", "init_ms", "checkpoint_ms", "restore_ms", "first_ms",
# "warm_ms": [...], "statuses": [...]} (chat: also "first_turn_ms", "warm_turn_ms") to argv[1].
CHAT_CHILD = """
import asyncio, json, os, sys, time
started = time.perf_counter()
CHAT_ENTRY
imported = time.perf_counter()
token = sys.stdin.read()
statuses = []
ASGI_DRIVER

async def call(path, body=None, authorized=False):
    data = json.dumps(body).encode() if body is not None else b""
    messages = [{"type": "http.request", "body": data, "more_body": False}]
    headers = [(b"host", b"127.0.0.1:8080"), (b"content-type", b"application/json"),
               (b"content-length", str(len(data)).encode())]
    if authorized:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": b"", "root_path": "", "server": ("127.0.0.1", 8080),
             "client": ("127.0.0.1", 40000), "headers": headers}
    began = time.perf_counter()
    sent = await drive(app, scope, messages)
    statuses.append(sent[0]["status"])
    if body is TURN and b"[DONE]" not in b"".join(m.get("body", b"") for m in sent):
        raise RuntimeError("the turn did not finish")
    return (time.perf_counter() - began) * 1000

LIST = {"type": "threads.list", "params": {"limit": 20}}
TURN = {"message": "list my tasks"}

async def main():
    result = {}
    async with app.router.lifespan_context(app):
        result["init_ms"] = (time.perf_counter() - imported) * 1000
        hooks = not os.environ.get("BENCH_NO_HOOKS")
        result["checkpoint_ms"] = await call("/_lwa/before-checkpoint") if hooks else 0.0
        result["restore_ms"] = await call("/_lwa/after-restore") if hooks else 0.0
        result["first_ms"] = await call("/chatkit", LIST, True)
        result["first_turn_ms"] = await call("/chatkit", TURN, True)
        result["warm_ms"] = [await call("/chatkit", LIST, True) for _ in range(WARM_REQUESTS)]
        result["warm_turn_ms"] = [await call("/chatkit", TURN, True) for _ in range(WARM_TURNS)]
    return result

result = asyncio.run(main())
result.update(import_ms=(imported - started) * 1000, statuses=statuses)
with open(sys.argv[1], "w") as out:
    json.dump(result, out)
""".replace("WARM_REQUESTS", str(WARM_REQUESTS)).replace("WARM_TURNS", str(WARM_TURNS))
CHAT_CHILD = CHAT_CHILD.replace("CHAT_ENTRY\n", cold_start.CHAT_ENTRY).replace(
    "ASGI_DRIVER\n", cold_start.ASGI_DRIVER
)

CRUD_CHILD = """
import json, os, sys, time
started = time.perf_counter()
from conversations_app.handler import handler
imported = time.perf_counter()
if os.environ.get("BENCH_NO_HOOKS"):
    before_snapshot = after_restore = lambda: None
else:
    from conversations_app.snapstart import local_hooks
    before_snapshot, after_restore = local_hooks.run_before_snapshot, local_hooks.run_after_restore

LAMBDA_CONTEXT

event = json.loads(sys.stdin.read())
statuses = []

def timed(step):
    began = time.perf_counter()
    step()
    return (time.perf_counter() - began) * 1000

def invoke():
    statuses.append(handler(event, Context())["statusCode"])

result = {"import_ms": (imported - started) * 1000, "init_ms": 0.0}
result["checkpoint_ms"] = timed(before_snapshot)
result["restore_ms"] = timed(after_restore)
result["first_ms"] = timed(invoke)
result["warm_ms"] = [timed(invoke) for _ in range(WARM_REQUESTS)]
result["statuses"] = statuses
with open(sys.argv[1], "w") as out:
    json.dump(result, out)
""".replace("WARM_REQUESTS", str(WARM_REQUESTS)).replace(
    "LAMBDA_CONTEXT\n", cold_start.LAMBDA_CONTEXT
)


@dataclass
class Restore:
    """Medians over the processes of one function (ms)."""

    init_ms: float
    checkpoint_ms: float
    restore_ms: float
    first_ms: float
    restore_path_ms: float
    """After-restore hook + first request (p50 of the sums): what a restored sandbox's first
    user waits for, besides Lambda's own restore."""
    warm_ms: float
    first_turn_ms: float | None = None
    warm_turn_ms: float | None = None
    hooks: bool = True
    """False for a checkout without hooks (``--compare-tree``): only the warm figures count."""


def run_function(
    name: str, database_url: str, root: Path = ROOT, hooks: bool = True
) -> dict[str, Any]:
    """One lifecycle of ``name`` (chat or conversations) from the checkout at ``root``; without
    ``hooks`` (a checkout that has none) only init, the first and the warm requests run."""
    environment = HOOK_ENV if hooks else {**HOOK_ENV, "BENCH_NO_HOOKS": "1"}
    if name == "chat":
        result = run_child(CHAT_CHILD, token(), "functions/chat", database_url, environment, root)
    else:
        result = run_child(
            CRUD_CHILD, crud_input(), "functions/conversations", database_url, environment, root
        )
    bad = [status for status in result["statuses"] if status != 200]
    if bad:
        raise RuntimeError(f"{name}: requests answered {bad}")
    return result


def summarize(results: list[dict[str, Any]]) -> Restore:
    def median(key: str) -> float:
        return statistics.median(float(result[key]) for result in results)

    def median_of_medians(key: str) -> float:
        return statistics.median(statistics.median(result[key]) for result in results)

    summary = Restore(
        init_ms=median("import_ms") + median("init_ms"),
        checkpoint_ms=median("checkpoint_ms"),
        restore_ms=median("restore_ms"),
        first_ms=median("first_ms"),
        restore_path_ms=statistics.median(r["restore_ms"] + r["first_ms"] for r in results),
        warm_ms=median_of_medians("warm_ms"),
    )
    if "first_turn_ms" in results[0]:
        summary.first_turn_ms = median("first_turn_ms")
        summary.warm_turn_ms = median_of_medians("warm_turn_ms")
    return summary


FUNCTIONS = ("chat", "conversations")


def measure(database_url: str, runs: int, compare_tree: Path | None = None) -> dict[str, Restore]:
    """Median restore path of the chat and conversations functions over ``runs`` fresh
    processes each (interleaved, so machine noise hits them alike). With ``compare_tree``, the
    same functions of that checkout run without hooks in the same rounds (keys ``name @ dir``):
    their warm requests are the "warm request unchanged" check."""
    plan = [(name, name, ROOT, True) for name in FUNCTIONS]
    if compare_tree is not None:
        plan += [(f"{name} @ {compare_tree.name}", name, compare_tree, False) for name in FUNCTIONS]
    results: dict[str, list[dict[str, Any]]] = {key: [] for key, *_ in plan}
    for _ in range(runs):
        for key, name, root, hooks in plan:
            results[key].append(run_function(name, database_url, root, hooks))
    summaries = {key: summarize(measured) for key, measured in results.items()}
    for key, _name, _root, hooks in plan:
        summaries[key].hooks = hooks
    return summaries


def table(measured: dict[str, Restore], runs: int) -> str:
    """The restore path next to the warm request; rows of a compared checkout show warm only."""
    lines = [
        "| function | restore path p50 (after-restore hook + 1st request) | warm request p50 "
        "| after-restore hook | before-snapshot hook (once per version) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, figures in measured.items():
        hooked = figures.hooks
        restore = f"{figures.restore_path_ms:.1f} ms" if hooked else "(no hooks)"
        hook = f"{figures.restore_ms:.2f} ms" if hooked else ""
        checkpoint = f"{figures.checkpoint_ms:,.0f} ms" if hooked else ""
        lines.append(f"| {name} | {restore} | {figures.warm_ms:.1f} ms | {hook} | {checkpoint} |")
        if figures.first_turn_ms is not None and figures.warm_turn_ms is not None:
            first_turn = f"{figures.first_turn_ms:.1f} ms" if hooked else "(no hooks)"
            lines.append(
                f"| {name}, one turn (offline model, one tool call) | {first_turn} "
                f"| {figures.warm_turn_ms:.1f} ms | | |"
            )
    lines.append("")
    lines.append(
        f"Medians over {runs} fresh processes per function; goal: restore path p50 <= "
        f"{GOAL_RESTORE_MS:.0f} ms, warm request unchanged."
    )
    return "\n".join(lines)


def cold_table(medians: dict[str, Run], runs: int) -> str:
    """Cold start without SnapStart (``bench.cold_start``), every program in the same rounds."""
    lines = [
        "| program | import | init | 1st request | total | vs all-in-one |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    baseline = medians["all-in-one"].total_ms
    for name, run in medians.items():
        lines.append(
            f"| {name} | {run.import_ms:,.0f} ms | {run.init_ms:,.0f} ms "
            f"| {run.request_ms:,.0f} ms | {run.total_ms:,.0f} ms "
            f"| {run.total_ms / baseline:.2f} |"
        )
    lines.append("")
    lines.append(f"Medians over {runs} fresh processes per program, interleaved.")
    return "\n".join(lines)


def write(
    measured: dict[str, Restore],
    cold: dict[str, Run],
    runs: int,
    command: str,
    path: Path = RESULTS_FILE,
) -> None:
    load = " / ".join(f"{value:.2f}" for value in os.getloadavg())
    text = (
        "# SnapStart restore path and cold start\n\n"
        f"- command: `{command}`\n"
        f"- date: {time.strftime('%Y-%m-%dT%H:%M:%S%z')}\n"
        f"- machine: {os.cpu_count()} cores, load average (1/5/15 min) {load} after the run "
        "(the machine is shared: compare figures within a table, not across runs)\n\n"
        "## Restore path (SnapStart)\n\n"
        + table(measured, runs)
        + "\n\n"
        + DESCRIPTION
        + "\n\n## Cold start without SnapStart\n\n"
        + cold_table(cold, runs)
        + "\n\n```json\n"
        + json.dumps(
            {
                "restore_ms": {name: asdict(figures) for name, figures in measured.items()},
                "cold_start_ms": {name: asdict(run) for name, run in cold.items()},
            },
            indent=2,
        )
        + "\n```\n"
    )
    path.write_text(text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    )
    parser.add_argument("--quick", action="store_true", help="5 processes per function, no file")
    parser.add_argument("--runs", type=int, help="processes per function (default 7; quick 5)")
    parser.add_argument(
        "--compare-tree",
        type=Path,
        help="another checkout (e.g. the base branch) measured in the same rounds",
    )
    args = parser.parse_args(argv)
    runs = max(args.runs or (5 if args.quick else 7), 3)
    ensure_database(args.database_url)
    migration_runner.upgrade(args.database_url)
    measured = measure(args.database_url, runs, args.compare_tree)
    print(table(measured, runs))
    if not args.quick:
        cold = cold_start.measure(args.database_url, runs, args.compare_tree)
        print(cold_table(cold, runs))
        command = "python -m bench.snapstart " + shlex.join(argv or sys.argv[1:])
        write(measured, cold, runs, command.strip())
        print(f"written: {RESULTS_FILE.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
