"""The built chat function's ``run.sh`` serves a streamed ChatKit turn.

``run.sh`` starts uvicorn on a free port with the template's environment (less the Web
Adapter's, which does not run here) and nothing else; ``/health`` is polled as the adapter's
readiness check does, then one ``threads.create`` streams from the offline model.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.chat.chat_support import user_input
from tests.support.built_artifacts import BuiltFunction, Runtime
from tests.support.server_process import ServerProcess
from tests.support.tokens import TEST_JWT_SECRET, auth_header

pytestmark = pytest.mark.built

READY_TIMEOUT_SECONDS = 90.0
TURN = {"type": "threads.create", "params": {"input": user_input("Hello from the artifact check")}}


@pytest.fixture
def chat(functions: dict[str, BuiltFunction]) -> BuiltFunction:
    return functions["ChatFunction"]


def test_run_sh_is_executable_in_the_build(chat: BuiltFunction) -> None:
    assert os.access(chat.code_dir / chat.handler, os.X_OK), f"{chat.handler} is not executable"


def test_run_sh_streams_a_threads_create_turn(
    chat: BuiltFunction, runtime: Runtime, database_url: str, tmp_path: Path
) -> None:
    env = runtime.environment(chat, DATABASE_URL=database_url, JWT_SECRET=TEST_JWT_SECRET)
    server = ServerProcess(
        [str(chat.code_dir / chat.handler)],
        env,
        tmp_path / "run.log",
        cwd=chat.code_dir,
        inherit=False,
    )
    try:
        ready = server.wait_ready(timeout=READY_TIMEOUT_SECONDS)
        events = stream_turn(server.url)
    finally:
        server.stop()
    types = [event.get("type") for event in events]
    done = [e for e in events if e.get("type") == "thread.item.done"]
    assistant = [e for e in done if e.get("item", {}).get("type") == "assistant_message"]
    assert "thread.created" in types, f"chat turn streamed {types}"
    assert assistant, f"chat turn streamed {types}"
    print(f"chat: run.sh ready in {ready:.1f}s; threads.create streamed {len(events)} events")


def stream_turn(url: str) -> list[dict[str, Any]]:
    """POST one ChatKit ``threads.create`` and read its SSE stream to the end."""
    with httpx.stream(
        "POST", f"{url}/chatkit", json=TURN, headers=auth_header("artifact-check-user"), timeout=60
    ) as response:
        assert response.status_code == 200, response.read()[:500]
        assert "text/event-stream" in response.headers.get("content-type", "")
        return [
            json.loads(line[len("data: ") :])
            for line in response.iter_lines()
            if line.startswith("data: ")
        ]
