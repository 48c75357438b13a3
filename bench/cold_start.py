"""Cold start of each function as a fresh process: import of the entry module plus first request.

    python -m bench.cold_start            # 10 runs per function
    python -m bench.cold_start --quick    # 5 runs per function (CI)
    python -m bench.cold_start --compare-tree /tmp/base   # and the same from another checkout

Each run is a new Python process that does what a new Lambda sandbox does and times it:

* conversations: import ``conversations_app.handler`` (app, engine, authenticator at module
  scope), then invoke ``handler`` with the ``list`` sample event: JWT check, one query;
* chat: what ``python -m chat_app`` (the entry ``run.sh`` starts) does before uvicorn serves:
  pause the garbage collector, import ``chat_app.app`` and create the app, run its lifespan
  startup (the Lambda Web Adapter waits for it before the first request); then a first ChatKit
  request (``threads.list``: JWT check, one query) through plain ASGI;
* chat, 1st turn: the same, but the first request is a chat turn (simple protocol, offline
  model, one tool call): where work deferred from the init phase shows up;
* migration: import ``migration_handler``, then a plain ``{"action": "upgrade"}`` invoke on the
  already migrated database (advisory lock, Alembic finds nothing to do);
* all-in-one (the baseline): one function bundling everything, i.e. import every dependency
  (the agent stack, ChatKit's server, FastMCP, OpenAI, SQLModel, FastAPI, Powertools, ...) and
  the three entry modules, then the conversations request.

``--compare-tree PATH`` also runs chat and conversations from another checkout (for example the
base branch, exported with ``git archive``) in the same rounds, for a before/after comparison.

The median of the runs is printed per phase, with the ratio the issue sets a goal for: the
CRUD function under 40% of the chat function.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import jwt
import migration_runner

from bench.seed import DEFAULT_DATABASE_URL, ensure_database
from bench.turn_overhead import LIMITS
from tests.support import built_artifacts

ROOT = Path(__file__).resolve().parents[1]
SECRET = "bench-only-hs256-secret-0123456789abcdef"  # noqa: S105 (a local benchmark)
GOAL_RATIO = 0.40

LAMBDA_CONTEXT = """
class Context:
    function_name = "conversations"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:conversations"
    aws_request_id = "bench"
"""
"""The Lambda context a conversations child hands its handler (what Powertools reads)."""

# The child programs: each writes {"import_ms", "init_ms", "request_ms", "status"} to argv[1].
CRUD_CHILD = """
import json, sys, time
started = time.perf_counter()
from conversations_app.handler import handler
imported = time.perf_counter()

LAMBDA_CONTEXT

event = json.loads(sys.stdin.read())
reply = handler(event, Context())
answered = time.perf_counter()
with open(sys.argv[1], "w") as out:
    json.dump({"import_ms": (imported - started) * 1000, "init_ms": 0.0,
               "request_ms": (answered - imported) * 1000, "status": reply["statusCode"]}, out)
""".replace("LAMBDA_CONTEXT\n", LAMBDA_CONTEXT)

CHAT_ENTRY = """
try:  # what the entry point (python -m chat_app) does first
    from chatkit_backend.init_phase import pause_collector
    pause_collector()
except ImportError:  # a compared checkout from before it
    pass
from chat_app.app import create_app
app = create_app()
"""
"""How a chat child loads the app: as ``chat_app.__main__`` and uvicorn's ``--factory`` do."""

ASGI_DRIVER = """
async def drive(app, scope, messages):
    sent = []
    done = asyncio.Event()
    async def receive():  # the client stays until the (streamed) response is complete
        if messages:
            return messages.pop(0)
        await done.wait()
        return {"type": "http.disconnect"}
    async def send(message):
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            done.set()
    await app(scope, receive, send)
    return sent
"""
"""How a chat child makes one ASGI request: the messages sent, once the response is complete."""

CHAT_CHILD = """
import asyncio, json, sys, time
started = time.perf_counter()
CHAT_ENTRY
imported = time.perf_counter()
ASGI_DRIVER
async def first_request(token):
    async with app.router.lifespan_context(app):
        ready = time.perf_counter()
        body = json.dumps({"type": "threads.list", "params": {"limit": 20}}).encode()
        messages = [{"type": "http.request", "body": body, "more_body": False}]
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": "POST", "scheme": "http", "path": "/chatkit", "raw_path": b"/chatkit",
            "query_string": b"", "root_path": "", "server": ("localhost", 8080),
            "client": ("127.0.0.1", 1), "headers": [
                (b"host", b"localhost"), (b"content-type", b"application/json"),
                (b"authorization", f"Bearer {token}".encode()),
                (b"content-length", str(len(body)).encode())],
        }
        sent = await drive(app, scope, messages)
        answer = b"".join(message.get("body", b"") for message in sent)
        complete = not answer.startswith(b"data:") or b"[DONE]" in answer  # a turn must finish
        return ready, sent[0]["status"] if complete else 599

ready, status = asyncio.run(first_request(sys.stdin.read()))
answered = time.perf_counter()
with open(sys.argv[1], "w") as out:
    json.dump({"import_ms": (imported - started) * 1000, "init_ms": (ready - imported) * 1000,
               "request_ms": (answered - ready) * 1000, "status": status}, out)
""".replace("CHAT_ENTRY\n", CHAT_ENTRY).replace("ASGI_DRIVER\n", ASGI_DRIVER)


MIGRATION_CHILD = """
import json, sys, time
started = time.perf_counter()
from migration_handler import handler
imported = time.perf_counter()
reply = handler(json.loads(sys.stdin.read()), None)
answered = time.perf_counter()
with open(sys.argv[1], "w") as out:
    json.dump({"import_ms": (imported - started) * 1000, "init_ms": 0.0,
               "request_ms": (answered - imported) * 1000,
               "status": 200 if reply.get("revision") else 500}, out)
"""

EVERY_DEPENDENCY = (
    "agents",
    "chatkit.server",
    "fastmcp",
    "openai",
    "sqlmodel",
    "fastapi",
    "mangum",
    "uvicorn",
    "sqlalchemy.ext.asyncio",
    "psycopg",
    "aiosqlite",
    "alembic.command",
    "aws_lambda_powertools",
    "aws_lambda_powertools.metrics",
    "aws_lambda_powertools.tracing",
    "aws_lambda_powertools.utilities.parameters",
    "jwt",
    "boto3",
    "pydantic_settings",
    "chat_app.app",
    "chat_app.service",
    "migration_handler",
)
"""What a single all-in-one function imports at cold start: every dependency of the project
and every entry module (the chat service is the agent stack's entry)."""

ALL_IN_ONE_CHILD = CRUD_CHILD.replace(
    "from conversations_app.handler import handler\n",
    "".join(f"import {name}\n" for name in EVERY_DEPENDENCY)
    + "from conversations_app.handler import handler\n",
)


@dataclass
class Run:
    import_ms: float
    init_ms: float
    request_ms: float
    process_ms: float

    @property
    def total_ms(self) -> float:
        return self.import_ms + self.init_ms + self.request_ms


def token() -> str:
    return jwt.encode(
        {"sub": "bench_cold_start", "exp": int(time.time()) + 3600}, SECRET, algorithm="HS256"
    )


def crud_input() -> str:
    event = json.loads((ROOT / "events" / "conversations" / "list.json").read_text())
    event["headers"]["authorization"] = f"Bearer {token()}"
    return json.dumps(event)


def run_child(
    program: str,
    stdin: str,
    function_dir: str,
    database_url: str,
    extra_env: dict[str, str] | None = None,
    root: Path = ROOT,
) -> dict[str, Any]:
    """Run ``program`` in a fresh interpreter started like a sandbox of ``function_dir`` (the
    layer and the function of the checkout at ``root`` on the import path, nothing else); returns
    the JSON it writes to the file named by its ``argv[1]`` and its wall time as ``process_ms``."""
    parts = ("layers/shared", *function_dir.split(":"))
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),  # noqa: S108 (only a fallback for HOME)
        "PYTHONPATH": os.pathsep.join(str(root / part) for part in parts),
        **child_settings(database_url),
        **(extra_env or {}),
    }
    return run_program([sys.executable], program, stdin, environment)


def child_settings(database_url: str) -> dict[str, str]:
    """The settings every child gets: the benchmark's database and token secret, quiet logs,
    and per-user limits out of reach (:data:`bench.turn_overhead.LIMITS`: every run's turns are
    one user's, within a minute, across processes sharing the database)."""
    return {
        "DATABASE_URL": database_url,
        "JWT_SECRET": SECRET,
        "LOG_LEVEL": "WARNING",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        **LIMITS,
    }


def run_program(
    interpreter: list[str], program: str, stdin: str, environment: dict[str, str]
) -> dict[str, Any]:
    """Run ``program`` with ``interpreter`` and only ``environment``; returns the JSON it writes
    to the file named by its ``argv[1]``, with its wall time as ``process_ms``."""
    with tempfile.TemporaryDirectory() as scratch:
        result_file = Path(scratch) / "result.json"
        started = time.perf_counter()
        completed = subprocess.run(
            [*interpreter, "-c", program, str(result_file)],
            input=stdin,
            capture_output=True,
            text=True,
            env=environment,
            cwd=scratch,
            timeout=300,
            check=False,
        )
        process_ms = (time.perf_counter() - started) * 1000
        if completed.returncode != 0 or not result_file.exists():
            raise RuntimeError(f"benchmark child failed:\n{completed.stderr[-3000:]}")
        result: dict[str, Any] = json.loads(result_file.read_text())
    result["process_ms"] = process_ms
    return result


def as_run(result: dict[str, Any]) -> Run:
    if result["status"] != 200:
        raise RuntimeError(f"first request answered {result['status']}")
    return Run(result["import_ms"], result["init_ms"], result["request_ms"], result["process_ms"])


class BuiltSandboxes:
    """Children that run a function from ``.aws-sam/build`` the way Lambda does: an empty Python
    3.12 (:class:`tests.support.built_artifacts.Runtime`) with only the function's folder and its
    layers on the import path, i.e. the deployed bytes (sourceless bytecode, and none of the dev
    packages: FastAPI, for one, imports email-validator when it is installed)."""

    def __init__(self, scratch: Path) -> None:
        self._functions = built_artifacts.load_functions(built_artifacts.BUILD_DIR)
        self._runtime = built_artifacts.Runtime(
            scratch / "runtime", built_artifacts.find_python312()
        )

    def run_target(self, target: tuple[str, Callable[[], str], str], database_url: str) -> Run:
        """One run of a :data:`BUILT_TARGETS` entry."""
        program, make_input, logical_id = target
        environment = self._runtime.environment(
            self._functions[logical_id], **child_settings(database_url)
        )
        interpreter = [str(self._runtime.python), "-s"]
        return as_run(run_program(interpreter, program, make_input(), environment))


def median_run(runs: list[Run]) -> Run:
    return Run(
        statistics.median(run.import_ms for run in runs),
        statistics.median(run.init_ms for run in runs),
        statistics.median(run.request_ms for run in runs),
        statistics.median(run.process_ms for run in runs),
    )


def migration_input() -> str:
    return json.dumps({"action": "upgrade"})


CHAT_TURN_CHILD = CHAT_CHILD.replace(
    'json.dumps({"type": "threads.list", "params": {"limit": 20}})',
    'json.dumps({"message": "list my tasks"})',
)
"""The chat function whose first request is a chat turn (offline model, one tool call): what a
client that streams at once waits for, and where work deferred from init is paid."""
assert CHAT_TURN_CHILD != CHAT_CHILD

ALL_FUNCTIONS = "functions/conversations:functions/chat:functions/migrate"
TARGETS: dict[str, tuple[str, Callable[[], str], str]] = {
    "chat": (CHAT_CHILD, token, "functions/chat"),
    "chat, 1st turn": (CHAT_TURN_CHILD, token, "functions/chat"),
    "conversations": (CRUD_CHILD, crud_input, "functions/conversations"),
    "migration": (MIGRATION_CHILD, migration_input, "functions/migrate"),
    "all-in-one": (ALL_IN_ONE_CHILD, crud_input, ALL_FUNCTIONS),
}
"""Function -> (child program, its stdin, its import path besides the layer)."""


COMPARED = ("chat", "chat, 1st turn", "conversations")
"""The targets ``--compare-tree`` also runs from the other checkout."""

BUILT_TARGETS: dict[str, tuple[str, Callable[[], str], str]] = {
    "chat, as built": (CHAT_CHILD, token, "ChatFunction"),
    "conversations, as built": (CRUD_CHILD, crud_input, "ConversationsFunction"),
}
"""The same programs run from ``.aws-sam/build`` (:class:`BuiltSandboxes`), when it exists:
program, its stdin, the function's logical id in the template."""


def measure(database_url: str, runs: int, compare_tree: Path | None = None) -> dict[str, Run]:
    """Median cold start of each of :data:`TARGETS` over ``runs`` fresh processes (interleaved,
    so machine noise hits them alike), and of :data:`BUILT_TARGETS` when ``.aws-sam/build``
    exists; ``database_url`` must be migrated.

    With ``compare_tree`` (another checkout, e.g. ``git worktree add /tmp/base main``) the
    :data:`COMPARED` targets also run from there, in the same rounds: a before/after comparison
    that the machine's load cannot skew."""
    plan: list[tuple[str, Callable[[], Run]]] = [
        (name, partial(run_target, target, ROOT, database_url)) for name, target in TARGETS.items()
    ]
    if compare_tree is not None:
        plan += [
            (
                f"{name} @ {compare_tree.name}",
                partial(run_target, TARGETS[name], compare_tree, database_url),
            )
            for name in COMPARED
        ]
    with tempfile.TemporaryDirectory() as scratch:
        if built_artifacts.is_built():
            built = BuiltSandboxes(Path(scratch))
            plan += [
                (name, partial(built.run_target, target, database_url))
                for name, target in BUILT_TARGETS.items()
            ]
        results: dict[str, list[Run]] = {name: [] for name, _ in plan}
        for _ in range(runs):
            for name, run_one in plan:
                results[name].append(run_one())
    return {name: median_run(measured) for name, measured in results.items()}


def run_target(target: tuple[str, Callable[[], str], str], root: Path, database_url: str) -> Run:
    """One run of a :data:`TARGETS` entry from the checkout at ``root``."""
    program, make_input, function_dir = target
    return as_run(run_child(program, make_input(), function_dir, database_url, root=root))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    )
    parser.add_argument("--quick", action="store_true", help="5 runs per function (CI)")
    parser.add_argument("--runs", type=int, help="runs per function (default 10; quick 5)")
    parser.add_argument(
        "--compare-tree", type=Path, help="another checkout to run chat and conversations from"
    )
    args = parser.parse_args(argv)
    runs = max(args.runs or (5 if args.quick else 10), 5)
    ensure_database(args.database_url)
    migration_runner.upgrade(args.database_url)
    medians = measure(args.database_url, runs, args.compare_tree)

    print(f"cold start, median of {runs} fresh processes (ms)")
    header = ("function", "import", "init", "1st request", "total", "process")
    print(f"{header[0]:<28}" + "".join(f"{column:>13}" for column in header[1:]))
    for name, run in medians.items():
        figures = (run.import_ms, run.init_ms, run.request_ms, run.total_ms, run.process_ms)
        print(f"{name:<28}" + "".join(f"{figure:>13.0f}" for figure in figures))
    ratio = medians["conversations"].total_ms / medians["chat"].total_ms
    verdict = "ok" if ratio < GOAL_RATIO else "MISSED"
    print(f"conversations / chat: {ratio:.0%} (goal < {GOAL_RATIO:.0%})  {verdict}")


if __name__ == "__main__":
    main()
