"""The composer's model picker and tool menu over the real model path (both APIs, the fake).

``MODEL_CHOICES`` decides which model a turn may use (what the fake receives is asserted), a
model or tool not offered is a 400 before anything is stored, and ``tool_choice`` reaches the
model request in each API's own shape.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from chat_app.task_repository import TaskRepository
from chatkit_backend.caller import Caller
from chatkit_backend.db import Database
from chatkit_backend.store import PostgresStore

from tests.e2e.chat.chat_support import (
    ChatServerThread,
    client_of,
    factory_with,
    headers_for,
    stream,
)
from tests.support.fake_openai import Api, FakeOpenAI, call, text

CHOICES = [
    {"id": "fast-model", "label": "Fast", "default": True},
    {"id": "smart-model", "label": "Smart"},
]


SERVER_SETTINGS = {"model_choices": CHOICES}


def create(text: str, **inference: Any) -> dict[str, Any]:
    return {
        "type": "threads.create",
        "params": {
            "input": {
                "content": [{"type": "input_text", "text": text}],
                "attachments": [],
                "inference_options": inference,
            }
        },
    }


async def test_the_offered_lists_are_served_to_the_signed_in_user(
    module_http: httpx.AsyncClient, alice: Caller
) -> None:
    assert (await module_http.get("/api/composer")).status_code == 401
    offered = (await module_http.get("/api/composer", headers=headers_for(alice))).json()
    assert offered["models"] == [
        CHOICES[0],
        {"id": "smart-model", "label": "Smart", "default": False},
    ]
    assert {"add_task", "list_tasks", "complete_task"} <= set(offered["tools"])


async def test_the_picked_model_answers_the_turn_and_writes_the_title(
    module_http: httpx.AsyncClient, fake: FakeOpenAI, alice: Caller
) -> None:
    picked = await stream(module_http, alice, create("hello there", model="smart-model"))
    assert picked.status_code == 200
    assert [request.body["model"] for request in fake.requests] == ["smart-model"]
    assert [request.body["model"] for request in fake.unstreamed.received] == ["smart-model"]

    default = await stream(module_http, alice, create("hello again"))
    assert default.status_code == 200
    assert fake.requests[-1].body["model"] == "fast-model"  # the default entry, not MODEL_NAME


@pytest.mark.parametrize(
    ("inference", "refused"),
    [({"model": "gpt-secret-preview"}, "Model"), ({"tool_choice": {"id": "rm_rf"}}, "Tool")],
)
async def test_what_is_not_offered_is_refused_before_anything_is_stored(
    module_http: httpx.AsyncClient,
    fake: FakeOpenAI,
    alice: Caller,
    store: PostgresStore,
    inference: dict[str, Any],
    refused: str,
) -> None:
    response = await module_http.post(
        "/chatkit", json=create("hello", **inference), headers=headers_for(alice)
    )
    assert response.status_code == 400
    assert response.json()["detail"].startswith(f"{refused} ")
    assert (await store.load_threads(10, None, "desc", alice)).data == []
    assert fake.requests == []


async def test_the_picked_tool_reaches_the_model_request(
    api: Api, module_http: httpx.AsyncClient, fake: FakeOpenAI, alice: Caller
) -> None:
    fake.script(call("list_tasks", {}), text("No tasks."))
    result = await stream(
        module_http, alice, create("what is on my list?", tool_choice={"id": "list_tasks"})
    )
    assert result.status_code == 200
    first, after_the_tool = (request.body for request in fake.requests)
    if api == "responses":
        assert first["tool_choice"] == {"type": "function", "name": "list_tasks"}
    else:
        assert first["tool_choice"] == {"type": "function", "function": {"name": "list_tasks"}}
    assert after_the_tool.get("tool_choice") in (None, "auto")  # forced once, then free


async def test_the_offline_model_offers_itself_and_follows_the_picked_tool(
    start_server: Callable[..., ChatServerThread], alice: Caller, pg_database: Database
) -> None:
    server = start_server(factory_with(None))  # make dev: no key, the offline model
    async with client_of(server) as client:
        offered = (await client.get("/api/composer", headers=headers_for(alice))).json()
        assert offered["models"] == [{"id": "offline", "label": "Offline model", "default": True}]
        refused = await client.post(
            "/chatkit", json=create("hi", model="fast-model"), headers=headers_for(alice)
        )
        assert refused.status_code == 400
        picked = await stream(
            client, alice, create("water the plants", tool_choice={"id": "add_task"})
        )
    assert picked.status_code == 200
    tasks = await TaskRepository(pg_database).list(alice.user_id)
    assert [task.title for task in tasks] == ["water the plants"]
