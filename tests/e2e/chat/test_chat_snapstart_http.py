"""The chat function's SnapStart hooks over real HTTP: the app under uvicorn on 127.0.0.1, called
the way the Lambda Web Adapter calls it (before the checkpoint, after the restore, then traffic).

uvicorn trusts ``X-Forwarded-For`` from 127.0.0.1 by default and rewrites the client address from
it, which is why the app refuses on the header itself and not only on the peer address.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from chat_app.snapstart import AFTER_RESTORE_ENV, BEFORE_CHECKPOINT_ENV

from tests.e2e.chat.chat_support import (
    ChatServerThread,
    factory_with,
    server_settings,
    sse_messages,
)
from tests.support.pg_activity import sessions_named, tagged_url
from tests.support.tokens import auth_header

BEFORE = "/_lwa/before-checkpoint"
AFTER = "/_lwa/after-restore"


@pytest.fixture
def snapstart_server(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, str]]:
    """A chat server with the adapter's hook variables set; yields (base URL, application_name)."""
    monkeypatch.setenv(BEFORE_CHECKPOINT_ENV, BEFORE)
    monkeypatch.setenv(AFTER_RESTORE_ENV, AFTER)
    url, name = tagged_url(pg_url)
    with ChatServerThread(server_settings(url), factory_with(None)) as server:
        yield server.url, name


async def test_hooks_then_a_streamed_turn_over_http(
    pg_url: str, snapstart_server: tuple[str, str]
) -> None:
    base, name = snapstart_server
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        listed = await client.post(
            "/chatkit", json={"type": "threads.list", "params": {}}, headers=auth_header("h1")
        )
        assert listed.status_code == 200
        assert sessions_named(pg_url, name) == 1

        for path in (BEFORE, AFTER):
            forwarded = await client.post(path, headers={"X-Forwarded-For": "127.0.0.1"})
            assert forwarded.status_code == 403
        assert sessions_named(pg_url, name) == 1

        assert (await client.post(BEFORE)).status_code == 200
        assert sessions_named(pg_url, name) == 0
        assert (await client.post(AFTER)).status_code == 200
        assert (await client.get("/health")).status_code == 200  # the adapter's readiness check
        assert sessions_named(pg_url, name) == 0  # nothing connects before a request needs it

        request = {
            "type": "threads.create",
            "params": {
                "input": {
                    "content": [{"type": "input_text", "text": "add a task: call mom"}],
                    "attachments": [],
                    "inference_options": {},
                }
            },
        }
        async with client.stream(
            "POST", "/chatkit", json=request, headers=auth_header("h1")
        ) as streamed:
            assert streamed.status_code == 200
            datas = [message["data"] async for message in sse_messages(streamed)]
        assert any('"thread.created"' in data for data in datas)
        assert any("call mom" in data for data in datas if '"thread.item.done"' in data)
        assert sessions_named(pg_url, name) >= 1  # reconnected (the turn may use both slots)
