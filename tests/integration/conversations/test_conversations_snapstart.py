"""The conversations function's SnapStart hooks, in a fresh process as the Lambda runtime runs them.

Outside Lambda ``snapshot_restore_py`` does not exist, so the handler registers its hooks with the
local registry; the child process plays the runtime: init (import), one invocation, the
before-snapshot hooks, the after-restore hooks, then the first invocation of a restored sandbox.
The server's ``pg_stat_activity`` says whether the handler's connections are really closed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.integration.conversations.routes_contract import build_event, new_user_id
from tests.support.paths import REPO_ROOT
from tests.support.pg_activity import sessions_named, tagged_url
from tests.support.tokens import TEST_JWT_SECRET, mint_hs256

ROOT = REPO_ROOT
IMPORT_PATH = os.pathsep.join(
    str(ROOT / part) for part in (".", "layers/shared", "functions/conversations")
)

CHILD = """
import json, random, sys

from conversations_app import handler as function
from conversations_app.snapstart import local_hooks
from tests.support.pg_activity import sessions_named

class Context:
    function_name = "conversations"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:conversations"
    aws_request_id = "req-1"

admin_url, name = sys.argv[2], sys.argv[3]
event = json.loads(sys.stdin.read())
steps = {}
steps["registered"] = [
    [hook.__name__ for hook in local_hooks.before_snapshot],
    [hook.__name__ for hook in local_hooks.after_restore],
    local_hooks.before_snapshot == [function.before_snapshot],
    local_hooks.after_restore == [function.after_restore],
]
first = function.handler(event, Context())
steps["init"] = [first["statusCode"], sessions_named(admin_url, name),
                 function.database.engine.pool.checkedin()]
local_hooks.run_before_snapshot()
steps["snapshot"] = [sessions_named(admin_url, name), function.database.engine.pool.checkedin()]
random.seed(99)
frozen = random.getstate()
local_hooks.run_after_restore()
steps["restored"] = [random.getstate() != frozen, sessions_named(admin_url, name)]
again = function.handler(event, Context())
steps["first request"] = [again["statusCode"], sessions_named(admin_url, name),
                          again["body"] == first["body"]]
with open(sys.argv[1], "w") as out:
    json.dump(steps, out)
"""


def test_hooks_close_the_pool_and_a_restored_sandbox_reconnects(
    pg_url: str, tmp_path: Path
) -> None:
    url, name = tagged_url(pg_url)
    event = build_event("list", token=mint_hs256(new_user_id()), query="limit=5")
    result_file = tmp_path / "result.json"
    completed = subprocess.run(
        [sys.executable, "-c", CHILD, str(result_file), pg_url, name],
        input=json.dumps(event),
        capture_output=True,
        text=True,
        env={
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": IMPORT_PATH,
            "DATABASE_URL": url,
            "JWT_SECRET": TEST_JWT_SECRET,
        },
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    steps = json.loads(result_file.read_text())

    assert steps["registered"] == [["before_snapshot"], ["after_restore"], True, True]
    assert steps["init"] == [200, 1, 1]
    assert steps["snapshot"] == [0, 0]
    assert steps["restored"] == [True, 0]
    assert steps["first request"] == [200, 1, True]
    assert sessions_named(pg_url, name) == 0  # the child is gone, and so are its sessions

    log_lines = [json.loads(line) for line in completed.stdout.splitlines() if line.startswith("{")]
    requests = [line for line in log_lines if line.get("message") == "request"]
    assert [line["status"] for line in requests] == [200, 401, 200]  # init, warm-up, restored
    assert [line["cold_start"] for line in requests] == [True, False, True]
