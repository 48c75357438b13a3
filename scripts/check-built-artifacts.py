"""Check the ``sam build`` output the way Lambda runs it: from the built folders only.

Run after ``sam build`` with the project's environment (``make check-artifacts``, or
``python scripts/check-built-artifacts.py``); it needs PostgreSQL (``TEST_DATABASE_URL``, default
the local server) and a Python 3.12 (``PYTHON312``, else ``python3.12`` on PATH, else pyenv's).

The functions run in subprocesses of an *empty* Python 3.12 virtualenv (the stand-in for the
managed runtime) whose import path is the function's built folder plus its built layers' ``python/``
folders, exactly as Lambda assembles ``/var/task`` and ``/opt/python``; nothing from the checkout
or the project's virtualenv is importable, and every module a function loaded is checked to come
from the build or the standard library. Steps:

1. sizes: each function's folder plus its layers, unzipped (limit 250 MiB, goal 150 MiB);
2. the migration handler answers a CloudFormation Create (a local HTTP server stands in for the
   pre-signed response URL) by migrating a scratch database, then a plain ``{"action":"upgrade"}``
   and a Delete (which must leave the schema alone);
3. the conversations handler serves every ``events/conversations/*.json`` event, with a minted
   HS256 token in place of ``REPLACE_WITH_JWT`` and real ids/cursors in place of the other
   placeholders, in one warm process (like one sandbox);
4. the chat function's ``run.sh`` starts uvicorn on a free port (the template's environment minus
   the Web Adapter) and streams one ChatKit ``threads.create`` turn from the offline model.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import http.client
import http.server
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import psycopg
from cfnlint.decode import cfn_yaml

ROOT = Path(__file__).resolve().parent.parent
BUILD_DIR = ROOT / ".aws-sam" / "build"
EVENTS_DIR = ROOT / "events" / "conversations"
LIMIT_MIB = 250
GOAL_MIB = 150
MIB = 1024 * 1024
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
JWT_SECRET = secrets.token_urlsafe(48)
USER_ID = "artifact-check-user"
ADAPTER_ONLY = ("AWS_LAMBDA_EXEC_WRAPPER", "AWS_LWA_")
"""Environment of the Lambda Web Adapter, which does not run here (uvicorn serves directly)."""
SECRET_REFERENCES = ("DATABASE_SECRET_ARN", "OPENAI_API_KEY", "OPENAI_API_KEY_SECRET_ARN")
"""Template settings a local run goes without: it gets the database URL and the JWT secret
directly, and no model key (the references would send it to Secrets Manager)."""
MARK = "\x1eRESULT "

# One warm "sandbox": import the handler once, then invoke it for each JSON event on stdin.
# Lines starting with MARK carry results; everything else on stdout is the function's own logs.
RUNNER = r"""
import importlib, json, os, sys, time, uuid

MARK = "\x1eRESULT "
module_name, attribute = sys.argv[1].rsplit(".", 1)
handler = getattr(importlib.import_module(module_name), attribute)
roots = [os.path.realpath(p) for p in sys.argv[2:]]
outside = sorted(
    name for name, module in list(sys.modules.items())
    if getattr(module, "__file__", None)
    and not any(os.path.realpath(module.__file__).startswith(root) for root in roots)
)


class Context:
    function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
    function_version = "$LATEST"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:" + function_name
    log_group_name = "/aws/lambda/" + function_name
    log_stream_name = "local"

    def __init__(self):
        self.aws_request_id = str(uuid.uuid4())
        self._deadline = time.monotonic() + 60

    def get_remaining_time_in_millis(self):
        return int((self._deadline - time.monotonic()) * 1000)


print(MARK + json.dumps({"outside": outside}), flush=True)
for line in sys.stdin:
    try:
        reply = {"ok": True, "result": handler(json.loads(line), Context())}
    except Exception as exc:
        reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    print(MARK + json.dumps(reply, default=str), flush=True)
"""


class CheckFailed(Exception):
    """One of the checks found the artifact broken."""


# --- the built template -------------------------------------------------------------------------


@dataclass
class BuiltFunction:
    """One function of the built template, with what the checks need to run it."""

    logical_id: str
    code_dir: Path
    handler: str
    layer_dirs: list[Path]
    environment: dict[str, str] = field(default_factory=dict)

    @property
    def import_path(self) -> str:
        return os.pathsep.join(str(path) for path in [self.code_dir, *self.layer_dirs])

    def size_bytes(self) -> int:
        return sum(_tree_size(path) for path in [self.code_dir, *self.layer_dirs])


def load_functions(build_dir: Path) -> dict[str, BuiltFunction]:
    """The functions of ``build_dir/template.yaml`` with their built folders and literal env."""
    template = cfn_yaml.load(str(build_dir / "template.yaml"))
    resources: dict[str, Any] = template["Resources"]
    global_env = _literal_env(template.get("Globals", {}).get("Function", {}))
    functions = {}
    for logical_id, resource in resources.items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        properties = resource["Properties"]
        layer_dirs = []
        for layer in properties.get("Layers", []):
            name = layer.get("Ref") if isinstance(layer, dict) else None
            if name in resources:  # the template's own layers; the Web Adapter is external
                content = resources[name]["Properties"]["ContentUri"]
                layer_dirs.append(build_dir / content / "python")
        functions[logical_id] = BuiltFunction(
            logical_id=logical_id,
            code_dir=build_dir / properties["CodeUri"],
            handler=properties["Handler"],
            layer_dirs=layer_dirs,
            environment={**global_env, **_literal_env(properties)},
        )
    return functions


def _literal_env(properties: dict[str, Any]) -> dict[str, str]:
    """The environment variables with literal values (those that need a deploy are left out)."""
    variables = properties.get("Environment", {}).get("Variables", {})
    return {key: str(value) for key, value in variables.items() if not isinstance(value, dict)}


def _tree_size(path: Path) -> int:
    files = (entry for entry in path.rglob("*") if entry.is_file() and not entry.is_symlink())
    return sum(entry.stat().st_size for entry in files)


# --- the runtime stand-in -----------------------------------------------------------------------


def find_python312() -> str:
    """A working Python 3.12: ``PYTHON312``, ``python3.12`` on PATH, or pyenv's."""
    candidates = [os.environ.get("PYTHON312", ""), shutil.which("python3.12") or ""]
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.12*/bin/python3.12")))
    for candidate in filter(None, candidates):
        probe = subprocess.run(  # noqa: S603
            [candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 12))"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.stdout.strip() == "True":
            return candidate
    raise CheckFailed("no Python 3.12 found (set PYTHON312)")


class Runtime:
    """An empty Python 3.12 virtualenv: the managed runtime without the project's packages."""

    def __init__(self, directory: Path, python312: str) -> None:
        subprocess.run(  # noqa: S603
            [python312, "-m", "venv", "--without-pip", str(directory)], check=True
        )
        self.bin_dir = directory / "bin"
        self.python = self.bin_dir / "python"
        paths = subprocess.run(  # noqa: S603
            [str(self.python), "-c", "import sysconfig; print(sysconfig.get_paths()['stdlib'])"],
            capture_output=True,
            text=True,
            check=True,
        )
        self.stdlib = paths.stdout.strip()

    def environment(self, function: BuiltFunction, **overrides: str) -> dict[str, str]:
        """What Lambda gives the function: its configuration (less :data:`SECRET_REFERENCES`)
        plus the runtime's variables."""
        env = {
            key: value
            for key, value in function.environment.items()
            if not key.startswith(ADAPTER_ONLY) and key not in SECRET_REFERENCES
        }
        env.update(
            PATH=f"{self.bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin",
            PYTHONPATH=function.import_path,
            LAMBDA_TASK_ROOT=str(function.code_dir),
            AWS_LAMBDA_FUNCTION_NAME=function.logical_id,
            AWS_REGION="us-east-1",
            AWS_DEFAULT_REGION="us-east-1",
            POWERTOOLS_TRACE_DISABLED="true",
            LANG="C.UTF-8",
        )
        env.update(overrides)
        return env


class Sandbox:
    """A warm function process: the handler imported once, then invoked per event."""

    def __init__(self, runtime: Runtime, function: BuiltFunction, env: dict[str, str]) -> None:
        self.function = function
        roots = [str(function.code_dir.parent), runtime.stdlib]
        self._process = subprocess.Popen(  # noqa: S603
            [str(runtime.python), "-s", "-c", RUNNER, function.handler, *roots],
            cwd=function.code_dir,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.logs: list[str] = []
        started = self._read()
        if started["outside"]:
            raise CheckFailed(
                f"{function.logical_id} imported modules from outside the build: "
                + ", ".join(started["outside"][:10])
            )

    def invoke(self, event: dict[str, Any]) -> Any:
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps(event) + "\n")
        self._process.stdin.flush()
        reply = self._read()
        if not reply["ok"]:
            raise CheckFailed(f"{self.function.logical_id} raised {reply['error']}")
        return reply["result"]

    def _read(self) -> dict[str, Any]:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            if line.startswith(MARK):
                return json.loads(line[len(MARK) :])
            self.logs.append(line.rstrip())
        tail = "\n".join(self.logs[-30:])
        raise CheckFailed(f"{self.function.logical_id} exited before answering:\n{tail}")

    def close(self) -> None:
        if self._process.stdin:
            self._process.stdin.close()
        self._process.wait(timeout=30)


@contextlib.contextmanager
def sandbox(runtime: Runtime, function: BuiltFunction, env: dict[str, str]) -> Iterator[Sandbox]:
    box = Sandbox(runtime, function, env)
    try:
        yield box
    finally:
        box.close()


# --- scratch database ---------------------------------------------------------------------------


@contextlib.contextmanager
def scratch_database() -> Iterator[str]:
    """A new, empty PostgreSQL database next to ``TEST_DATABASE_URL``'s (dropped afterwards)."""
    admin = os.environ.get("TEST_DATABASE_URL", DEFAULT_ADMIN_URL).replace("+psycopg", "")
    name = f"ckb_artifacts_{secrets.token_hex(6)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = admin.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def schema_revision(url: str) -> str | None:
    with psycopg.connect(url) as conn:
        exists = conn.execute("SELECT to_regclass('alembic_version')").fetchone()
        if not exists or exists[0] is None:
            return None
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        return row[0] if row else None


# --- checks -------------------------------------------------------------------------------------


def check_sizes(functions: dict[str, BuiltFunction]) -> None:
    print(f"{'function':<24}{'unzipped (MiB)':>16}  layers")
    over = []
    for function in functions.values():
        mib = function.size_bytes() / MIB
        layers = ", ".join(path.parent.name for path in function.layer_dirs)
        note = "" if mib <= GOAL_MIB else f"  (over the {GOAL_MIB} MiB goal)"
        print(f"{function.logical_id:<24}{mib:>16.1f}  {layers}{note}")
        if mib > LIMIT_MIB:
            over.append(function.logical_id)
    if over:
        raise CheckFailed(f"over the {LIMIT_MIB} MiB unzipped limit: {', '.join(over)}")


class _ResponseCatcher(http.server.BaseHTTPRequestHandler):
    """Stands in for CloudFormation's pre-signed response URL: records each PUT body."""

    received: list[dict[str, Any]]

    def do_PUT(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self.received.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the check prints its own summary."""


@contextlib.contextmanager
def response_server() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []
    handler = type("Catcher", (_ResponseCatcher,), {"received": received})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/cfn-response", received
    finally:
        server.shutdown()
        server.server_close()


def custom_resource_event(request_type: str, url: str) -> dict[str, Any]:
    return {
        "RequestType": request_type,
        "ResponseURL": url,
        "StackId": "arn:aws:cloudformation:us-east-1:000000000000:stack/artifact-check/1",
        "RequestId": secrets.token_hex(8),
        "ResourceType": "Custom::DatabaseMigration",
        "LogicalResourceId": "DatabaseMigration",
        "PhysicalResourceId": "chatkit-database-schema",
        "ResourceProperties": {"ServiceToken": "local", "FunctionVersion": "1"},
    }


def check_migration(runtime: Runtime, function: BuiltFunction, database_url: str) -> None:
    # The answer goes to a loopback server here, not a pre-signed S3 URL: allowed outside Lambda.
    env = runtime.environment(
        function, DATABASE_URL=database_url, CUSTOM_RESOURCE_LOOPBACK_RESPONSES="true"
    )
    with response_server() as (url, received), sandbox(runtime, function, env) as box:
        box.invoke(custom_resource_event("Create", url))
        created = _single(received, "Create")
        revision = schema_revision(database_url)
        if created["Status"] != "SUCCESS" or not revision:
            raise CheckFailed(f"migration Create answered {created}; schema at {revision}")
        if created.get("Data", {}).get("Revision") != revision:
            raise CheckFailed(f"Create reported {created.get('Data')}, database is at {revision}")
        plain = box.invoke({"action": "upgrade"})
        if plain != {"action": "upgrade", "revision": revision}:
            raise CheckFailed(f"plain upgrade returned {plain}")
        box.invoke(custom_resource_event("Delete", url))
        deleted = _single(received, "Delete")
        if deleted["Status"] != "SUCCESS" or schema_revision(database_url) != revision:
            raise CheckFailed(f"migration Delete answered {deleted} or changed the schema")
    print(f"migration: Create SUCCESS (revision {revision}), plain upgrade, Delete SUCCESS")


def _single(received: list[dict[str, Any]], what: str) -> dict[str, Any]:
    if len(received) != 1:
        raise CheckFailed(f"{what}: expected one CloudFormation response, got {len(received)}")
    return received.pop()


def mint_token() -> str:
    now = int(time.time())
    return jwt.encode({"sub": USER_ID, "iat": now, "exp": now + 900}, JWT_SECRET, algorithm="HS256")


def load_event(name: str, substitutions: dict[str, str]) -> dict[str, Any]:
    text = (EVENTS_DIR / f"{name}.json").read_text()
    for placeholder, value in substitutions.items():
        text = text.replace(placeholder, value)
    if "REPLACE_WITH_" in text:
        raise CheckFailed(f"events/conversations/{name}.json has a placeholder this check lacks")
    return json.loads(text)


CRUD_ORDER = (
    ("health", 200),
    ("create", 201),
    ("list", 200),
    ("list-cursor", 200),
    ("recent", 200),
    ("get", 200),
    ("messages", 200),
    ("rename", 200),
    ("delete", 200),
)
"""Every event file, in an order where each one's placeholders can be filled, and its status."""


def check_conversations(runtime: Runtime, function: BuiltFunction, database_url: str) -> None:
    names = {path.stem for path in EVENTS_DIR.glob("*.json")}
    unplanned = names - {name for name, _ in CRUD_ORDER}
    if unplanned:
        raise CheckFailed(f"no expectation for events: {', '.join(sorted(unplanned))}")
    env = runtime.environment(function, DATABASE_URL=database_url, JWT_SECRET=JWT_SECRET)
    subs = {"REPLACE_WITH_JWT": mint_token()}
    with sandbox(runtime, function, env) as box:
        for _ in range(20):  # a full first page (limit=20 in list.json) so a cursor follows
            box.invoke(load_event("create", subs))
        results = []
        for name, expected in CRUD_ORDER:
            if name not in names:
                continue
            response = box.invoke(load_event(name, subs))
            status = response.get("statusCode")
            body = json.loads(response.get("body") or "null")
            if status != expected:
                raise CheckFailed(f"{name}.json: status {status}, expected {expected}: {body}")
            if name == "create":
                subs["REPLACE_WITH_CONVERSATION_ID"] = body["id"]
            if name == "list":
                subs["REPLACE_WITH_CURSOR"] = body["next_cursor"]
            results.append(f"{name} {status}")
    print("conversations: " + ", ".join(results))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def check_chat(runtime: Runtime, function: BuiltFunction, database_url: str) -> None:
    port = free_port()
    env = runtime.environment(
        function, DATABASE_URL=database_url, JWT_SECRET=JWT_SECRET, PORT=str(port)
    )
    script = function.code_dir / function.handler
    if not os.access(script, os.X_OK):
        raise CheckFailed(f"{function.handler} is not executable in the build")
    with tempfile.TemporaryFile("w+") as log:
        server = subprocess.Popen(  # noqa: S603
            [str(script)], cwd=function.code_dir, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            started = time.monotonic()
            wait_healthy(port, server)
            ready = time.monotonic() - started
            events = stream_turn(port)
        except CheckFailed:
            log.seek(0)
            print(log.read()[-4000:], file=sys.stderr)
            raise
        finally:
            server.terminate()
            server.wait(timeout=30)
    types = [event.get("type") for event in events]
    done = [e for e in events if e.get("type") == "thread.item.done"]
    assistant = [e for e in done if e.get("item", {}).get("type") == "assistant_message"]
    if "thread.created" not in types or not assistant:
        raise CheckFailed(f"chat turn streamed {types}")
    print(f"chat: run.sh ready in {ready:.1f}s; threads.create streamed {len(events)} events")


def wait_healthy(port: int, server: subprocess.Popen[bytes], timeout: float = 90.0) -> None:
    """Poll ``/health`` the way the Web Adapter's readiness check does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise CheckFailed(f"run.sh exited with {server.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise CheckFailed("run.sh did not answer /health")


def stream_turn(port: int) -> list[dict[str, Any]]:
    """POST one ChatKit ``threads.create`` and read its SSE stream to the end."""
    body = {
        "type": "threads.create",
        "params": {
            "input": {
                "content": [{"type": "input_text", "text": "Hello from the artifact check"}],
                "attachments": [],
                "inference_options": {},
            }
        },
    }
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request(
        "POST",
        "/chatkit",
        body=json.dumps(body),
        headers={"Authorization": f"Bearer {mint_token()}", "Content-Type": "application/json"},
    )
    response = conn.getresponse()
    if response.status != 200 or "text/event-stream" not in response.getheader("content-type", ""):
        raise CheckFailed(f"/chatkit answered {response.status}: {response.read()[:500]!r}")
    events = []
    for raw in response:
        line = raw.decode().rstrip("\r\n")
        if line.startswith("data: "):
            events.append(json.loads(line[len("data: ") :]))
    return events


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", type=Path, default=BUILD_DIR, help="sam build's output")
    build_dir = parser.parse_args(argv).build_dir.resolve()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    if not (build_dir / "template.yaml").exists():
        print(f"no build at {build_dir}: run `sam build` first", file=sys.stderr)
        return 2
    functions = load_functions(build_dir)
    try:
        check_sizes(functions)
        with tempfile.TemporaryDirectory(prefix="lambda-runtime-") as directory:
            runtime = Runtime(Path(directory), find_python312())
            with scratch_database() as database_url:
                check_migration(runtime, functions["MigrationFunction"], database_url)
                check_conversations(runtime, functions["ConversationsFunction"], database_url)
                check_chat(runtime, functions["ChatFunction"], database_url)
    except CheckFailed as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    print("built artifacts OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
