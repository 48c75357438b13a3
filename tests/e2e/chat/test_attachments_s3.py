"""Attachments with ``ATTACHMENTS_BUCKET``: S3 is moto in server mode over real HTTP, the model is
the fake OpenAI server over real HTTP (both APIs), the chat and CRUD apps real uvicorn servers.

What the model receives is asserted byte for byte: the image as an image part with a ``data:``
URL, the PDF as a file part with base64 ``file_data``, the text file as text, in the first turn
and after a reload, and, once the message is no longer among the newest, by name only.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest
from chatkit_backend.caller import Caller
from moto.server import ThreadedMotoServer
from sqlalchemy import event

from tests.e2e.chat.chat_support import (
    ChatServerThread,
    factory_with,
    headers_for,
    json_body,
    post,
    server_settings,
    stream,
    user_input,
)
from tests.support.fake_openai import APIS, Api, FakeOpenAI
from tests.support.servers import conversations_server

BUCKET = "chat-attachments"
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6300010000050001a5f645400000000049454e44ae426082"
)
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
CSV = b"name,qty\nmilk,2\n"


async def add_message(client: httpx.AsyncClient, user: Caller, thread_id: str, text: str) -> int:
    """A ``threads.add_user_message`` of ``text`` to ``thread_id``, streamed to its end; its
    status."""
    params = {"thread_id": thread_id, "input": user_input(text)}
    body = {"type": "threads.add_user_message", "params": params}
    return (await stream(client, user, body)).status_code


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """moto's server on a free port; boto3 (in the apps' threads too) points at it."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL_S3": endpoint,
        }.items():
            patch.setenv(name, value)
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        try:
            yield endpoint
        finally:
            server.stop()


@pytest.fixture(scope="module")
def s3_servers(
    pg_url: str, fake_openai: FakeOpenAI, s3_endpoint: str
) -> Iterator[dict[Api, ChatServerThread]]:
    """One chat server per model API, attachments in the bucket, bytes for 2 messages."""
    servers: dict[Api, ChatServerThread] = {}
    try:
        for api in APIS:
            settings = server_settings(
                pg_url,
                openai_base_url=fake_openai.base_url,
                openai_api=api,
                attachments_bucket=BUCKET,
                attachment_model_messages=2,
                agent_turn_timeout_seconds=60.0,
            )
            servers[api] = ChatServerThread(settings, factory_with(None)).start()
        yield servers
    finally:
        for server in servers.values():
            server.stop()


@pytest.fixture(scope="module")
def crud_url(pg_url: str, s3_endpoint: str) -> Iterator[str]:
    settings = server_settings(pg_url, attachments_bucket=BUCKET)
    with conversations_server(settings) as server:
        yield server.url


@pytest.fixture
async def s3_client(s3_servers: dict[Api, ChatServerThread], api: Api) -> Any:
    async with httpx.AsyncClient(base_url=s3_servers[api].url, timeout=30) as http:
        yield http


async def fetch(method: str, url: str, **options: Any) -> httpx.Response:
    """A request from outside the apps (the browser's upload, preview and REST calls)."""
    async with httpx.AsyncClient(timeout=10) as web:
        return await web.request(method, url, **options)


def s3_objects() -> dict[str, int]:
    listed = boto3.client("s3").list_objects_v2(Bucket=BUCKET).get("Contents", [])
    return {entry["Key"]: entry["Size"] for entry in listed}


async def created(
    client: httpx.AsyncClient, user: Caller, name: str, mime_type: str, size: int
) -> dict[str, Any]:
    response = await post(
        client,
        user,
        {
            "type": "attachments.create",
            "params": {"name": name, "size": size, "mime_type": mime_type},
        },
    )
    assert response.status_code == 200, response.text
    return dict(json_body(response))


async def uploaded(
    client: httpx.AsyncClient, user: Caller, name: str, mime_type: str, data: bytes
) -> dict[str, Any]:
    attachment = await created(client, user, name, mime_type, len(data))
    descriptor = attachment["upload_descriptor"]
    assert descriptor["url"].startswith("http://127.0.0.1:")
    put = await fetch(
        descriptor["method"], descriptor["url"], content=data, headers=descriptor["headers"]
    )
    assert put.status_code == 200, put.text
    return attachment


def data_url(mime_type: str, data: bytes) -> str:
    return f"data:{mime_type};base64,{base64.b64encode(data).decode()}"


async def test_upload_to_s3_then_the_model_sees_the_bytes_on_both_apis(
    api: Api,
    s3_client: httpx.AsyncClient,
    fake: FakeOpenAI,
    alice: Caller,
    bob: Caller,
    crud_url: str,
) -> None:
    image = await uploaded(s3_client, alice, "dot.png", "image/png", PNG)
    pdf = await uploaded(s3_client, alice, "spec.pdf", "application/pdf", PDF)
    csv = await uploaded(s3_client, alice, "list.csv", "text/csv", CSV)
    early = await fetch("GET", image["preview_url"])
    assert (early.status_code, early.content) == (200, PNG)

    first = await stream(
        s3_client,
        alice,
        {
            "type": "threads.create",
            "params": {"input": user_input("Look", [image["id"], pdf["id"], csv["id"]])},
        },
    )
    assert first.status_code == 200
    thread_id = first.thread_id
    parts = fake.requests[-1].user_parts()[-1]
    assert ("image", data_url("image/png", PNG)) in parts
    assert ("file", f"spec.pdf|{data_url('application/pdf', PDF)}") in parts
    assert any(kind == "text" and value.endswith(CSV.decode()) for kind, value in parts)
    assert any('"dot.png" (image/png' in value for kind, value in parts if kind == "text")
    owner = next(iter(s3_objects())).split("/")[1]
    assert s3_objects() == {
        f"files/{owner}/{image['id']}": len(PNG),
        f"files/{owner}/{pdf['id']}": len(PDF),
        f"files/{owner}/{csv['id']}": len(CSV),
    }

    # Reload: a fresh signed preview, then a turn that still carries the bytes.
    loaded = json_body(
        await post(
            s3_client, alice, {"type": "threads.get_by_id", "params": {"thread_id": thread_id}}
        )
    )
    message = next(i for i in loaded["items"]["data"] if i["type"] == "user_message")
    preview = message["attachments"][0]["preview_url"]
    assert f"files/{owner}/{image['id']}" in preview
    assert (await fetch("GET", preview)).content == PNG
    assert await add_message(s3_client, alice, thread_id, "Again") == 200
    history = fake.requests[-1].user_parts()
    assert ("image", data_url("image/png", PNG)) in history[0]

    # Two newer messages later, the first one's attachments are named, not resent.
    assert await add_message(s3_client, alice, thread_id, "And now?") == 200
    history = fake.requests[-1].user_parts()
    assert [kind for kind, _ in history[0]] == ["text", "text", "text", "text"]
    assert 'Earlier attachment "dot.png"' in history[0][1][1]
    assert "base64" not in str(fake.requests[-1].body)

    rest = (
        await fetch(
            "GET",
            f"{crud_url}/api/conversations/{thread_id}",
            headers=headers_for(alice),
            timeout=10,
        )
    ).json()
    shown = rest["messages"][0]["attachments"]
    assert [a["name"] for a in shown] == ["dot.png", "spec.pdf", "list.csv"]
    # another user gets no preview URL of these: the thread and the conversation are 404
    theirs = await post(
        s3_client, bob, {"type": "threads.get_by_id", "params": {"thread_id": thread_id}}
    )
    assert theirs.status_code == 404
    foreign = await fetch(
        "GET", f"{crud_url}/api/conversations/{thread_id}", headers=headers_for(bob)
    )
    assert foreign.status_code == 404
    refused = await fetch(
        "DELETE", f"{crud_url}/api/conversations/{thread_id}", headers=headers_for(bob)
    )
    assert refused.status_code == 404
    assert len(s3_objects()) == 3
    assert (await fetch("GET", shown[0]["preview_url"])).content == PNG

    deleted = await fetch(
        "DELETE", f"{crud_url}/api/conversations/{thread_id}", headers=headers_for(alice)
    )
    assert deleted.status_code == 200
    assert s3_objects() == {}
    assert (await fetch("GET", preview)).status_code in (403, 404)  # S3 answers 403 to no List


async def test_s3_refusals_wrong_size_other_user_and_deletes(
    api: Api, s3_client: httpx.AsyncClient, fake: FakeOpenAI, alice: Caller, bob: Caller
) -> None:
    attachment = await created(s3_client, alice, "dot.png", "image/png", len(PNG))
    descriptor = attachment["upload_descriptor"]
    longer = await fetch(
        "PUT", descriptor["url"], content=PNG + b"x", headers=descriptor["headers"]
    )
    # moto does not enforce the signed Content-Length (real S3 answers 403); if it stored the
    # longer body, the send-time size check refuses it all the same.
    if longer.status_code == 200:
        refused = await stream(
            s3_client,
            alice,
            {"type": "threads.create", "params": {"input": user_input("x", [attachment["id"]])}},
        )
        assert refused.status_code == 400
    else:
        assert longer.status_code == 403
    requests_before = len(fake.requests)

    mine = await uploaded(s3_client, alice, "dot.png", "image/png", PNG)
    for body in (
        {"type": "threads.create", "params": {"input": user_input("x", [mine["id"]])}},
        {"type": "attachments.delete", "params": {"attachment_id": mine["id"]}},
    ):
        foreign = await post(s3_client, bob, body)
        assert foreign.status_code == 404, foreign.text
    assert len(fake.requests) == requests_before
    assert any(key.endswith(mine["id"]) for key in s3_objects())

    gone = await post(
        s3_client, alice, {"type": "attachments.delete", "params": {"attachment_id": mine["id"]}}
    )
    assert gone.status_code == 200
    assert not any(key.endswith(mine["id"]) for key in s3_objects())
    deleted = await stream(
        s3_client,
        alice,
        {"type": "threads.create", "params": {"input": user_input("x", [mine["id"]])}},
    )
    assert deleted.status_code == 404
    assert len(fake.requests) == requests_before


@pytest.mark.parametrize("api", ["responses"])
async def test_limits_are_refused_before_any_model_call(
    api: Api,
    s3_client: httpx.AsyncClient,
    s3_servers: dict[Api, ChatServerThread],
    fake: FakeOpenAI,
    alice: Caller,
) -> None:
    eleven = [
        (await created(s3_client, alice, f"f{n}.txt", "text/plain", 3))["id"] for n in range(11)
    ]
    too_many = await post(
        s3_client, alice, {"type": "threads.create", "params": {"input": user_input("x", eleven)}}
    )
    assert too_many.status_code == 400
    assert "at most 10" in too_many.json()["detail"]

    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    engine = s3_servers[api].database.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        repeated = await post(
            s3_client,
            alice,
            {"type": "threads.create", "params": {"input": user_input("x", [eleven[0]] * 2000)}},
        )
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert repeated.status_code == 400
    assert "attachment references" in repeated.json()["detail"]
    nine = 9 * 1024 * 1024
    big = [(await created(s3_client, alice, f"b{n}.png", "image/png", nine))["id"] for n in (1, 2)]
    over_budget = await post(
        s3_client, alice, {"type": "threads.create", "params": {"input": user_input("x", big)}}
    )
    assert over_budget.status_code == 413
    assert "model request budget" in over_budget.json()["detail"]
    assert len(statements) <= 2, statements
    assert fake.requests == []
