"""The chat function started the way the Lambda Web Adapter starts it: ``run.sh``, which runs
``python -m chat_app`` (uvicorn with the init phase's garbage collector paused), on PostgreSQL.

The adapter polls ``/health`` and then forwards the function URL's requests over loopback HTTP;
this test does the same with a user's token and the offline model.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.server_process import ChatEntryProcess
from tests.support.tokens import TEST_JWT_SECRET, auth_header


@pytest.fixture
def entry_process(pg_url: str, tmp_path: Path) -> Iterator[ChatEntryProcess]:
    server = ChatEntryProcess(
        {
            "DATABASE_URL": pg_url,
            "JWT_SECRET": TEST_JWT_SECRET,
            "MODEL": "offline",
            "LOG_LEVEL": "WARNING",
        },
        tmp_path / "run.log",
    )
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def test_run_sh_serves_a_streamed_turn_and_the_thread_list(entry_process: ChatEntryProcess) -> None:
    headers = auth_header("entry_point_user")
    with httpx.stream(
        "POST",
        f"{entry_process.url}/chatkit",
        json={"message": "add a task to water the plants"},
        headers=headers,
        timeout=30,
    ) as response:
        assert response.status_code == 200
        thread_id = response.headers["x-thread-id"]
        events = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    results = [json.loads(event) for event in events[:-1]]
    assert any(event["type"] == "tool_result" for event in results)

    listed = httpx.post(
        f"{entry_process.url}/chatkit",
        json={"type": "threads.list", "params": {"limit": 5}},
        headers=headers,
        timeout=10,
    )
    assert listed.status_code == 200
    assert [thread["id"] for thread in listed.json()["data"]] == [thread_id]
    assert httpx.post(f"{entry_process.url}/chatkit", json={"message": "hi"}).status_code == 401
