"""The handler in a fresh process, as Lambda starts it: small imports, warm reuse, clean logs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.integration.conversations.routes_contract import build_event, new_user_id
from tests.support.paths import REPO_ROOT
from tests.support.tokens import TEST_JWT_SECRET, mint_hs256

ROOT = REPO_ROOT
IMPORT_PATH = os.pathsep.join(
    str(ROOT / part) for part in (".", "layers/shared", "functions/conversations")
)
AGENT_STACK = ("agents", "openai", "fastmcp", "chatkit.server")

CHILD = """
import json, sys

from conversations_app.handler import handler

class Context:
    function_name = "conversations"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:conversations"
    aws_request_id = "req-1"

events = json.loads(sys.stdin.read())
created = handler(events["create"], Context())
conversation_id = json.loads(created["body"])["id"]
get = json.loads(json.dumps(events["get"]).replace("REPLACE_CONVERSATION", conversation_id))
replies = [created] + [handler(event, Context()) for event in (events["list"], events["list"], get)]
with open(sys.argv[1], "w") as out:
    json.dump({"replies": replies, "modules": sorted(sys.modules)}, out)
"""


def test_fresh_process_imports_no_agent_stack_and_serves_warm_invocations(
    pg_url: str, tmp_path: Path
) -> None:
    user = new_user_id()
    token = mint_hs256(user)
    title = "confidential-title-4242"
    events = {
        "create": build_event("create", token=token, body={"title": title}),
        "list": build_event("list", token=token, query="limit=5"),
        "get": build_event("get", token=token, conversation_id="REPLACE_CONVERSATION"),
    }
    result_file = tmp_path / "result.json"
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": IMPORT_PATH,
        "DATABASE_URL": pg_url,
        "JWT_SECRET": TEST_JWT_SECRET,
    }
    completed = subprocess.run(
        [sys.executable, "-c", CHILD, str(result_file)],
        input=json.dumps(events),
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr

    result = json.loads(result_file.read_text())
    assert [m for m in AGENT_STACK if m in result["modules"]] == []
    assert not any(m.startswith(("agents.", "openai.", "fastmcp.")) for m in result["modules"])
    # Nor the ChatKit SDK: REST reads plain columns and writes the thread JSON itself.
    assert not any(m == "chatkit" or m.startswith("chatkit.") for m in result["modules"])
    # Nor, on PostgreSQL, SQLAlchemy's SQLite dialect (the embedded database's only).
    assert "sqlalchemy.dialects.sqlite" not in result["modules"]

    created, first_list, second_list, get = result["replies"]
    assert created["statusCode"] == 201
    assert first_list["statusCode"] == second_list["statusCode"] == get["statusCode"] == 200
    assert first_list["body"] == second_list["body"]
    assert [c["title"] for c in json.loads(first_list["body"])["conversations"]] == [title]
    assert json.loads(get["body"])["title"] == title

    log_lines = [json.loads(line) for line in completed.stdout.splitlines() if line.startswith("{")]
    requests = [line for line in log_lines if line.get("message") == "request"]
    assert len(requests) == 4
    assert all(line["user_id"] == user and line["correlation_id"] for line in requests)
    assert [line["cold_start"] for line in requests] == [True, False, False, False]
    assert token not in completed.stdout + completed.stderr
    assert title not in completed.stdout + completed.stderr  # no message content in logs
