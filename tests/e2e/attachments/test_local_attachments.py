"""Attachments from ``make dev`` with no configuration: the dev server as a process, real HTTP.

The two-phase upload against the local signed route (bytes under ``DATA_DIR``), the offline
model acknowledging what it received, previews on reload (ChatKit and REST), refusals of wrong
sizes and tampered URLs, and deletion of the bytes with the conversation.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.chat.chat_support import user_input
from tests.support.server_process import DevServerProcess

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6300010000050001a5f645400000000049454e44ae426082"
)


@pytest.fixture(scope="module")
def server_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("local-attachments") / "data"


@pytest.fixture(scope="module")
def server(server_data_dir: Path) -> Iterator[DevServerProcess]:
    log = server_data_dir.parent / "server.log"
    process = DevServerProcess({"DATA_DIR": str(server_data_dir)}, log)
    try:
        process.wait_ready()
        yield process
    finally:
        process.stop()


def chatkit(server: DevServerProcess, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{server.url}/chatkit", json=body, timeout=30)


def create(server: DevServerProcess, name: str, mime_type: str, size: int) -> httpx.Response:
    return chatkit(
        server,
        {
            "type": "attachments.create",
            "params": {"name": name, "size": size, "mime_type": mime_type},
        },
    )


def send(server: DevServerProcess, text: str, attachment_ids: list[str]) -> httpx.Response:
    """A ``threads.create`` whose message carries ``attachment_ids``."""
    body = {"type": "threads.create", "params": {"input": user_input(text, attachment_ids)}}
    return chatkit(server, body)


def upload(attachment: dict[str, Any], data: bytes) -> httpx.Response:
    descriptor = attachment["upload_descriptor"]
    return httpx.request(
        descriptor["method"], descriptor["url"], content=data, headers=descriptor["headers"]
    )


def events(response: httpx.Response) -> list[dict[str, Any]]:
    return [
        json.loads(line[len("data: ") :])
        for line in response.text.splitlines()
        if line.startswith("data: ")
    ]


def answer(streamed: list[dict[str, Any]]) -> str:
    return "".join(
        event["update"]["delta"]
        for event in streamed
        if event["type"] == "thread.item.updated"
        and event["update"]["type"] == "assistant_message.content_part.text_delta"
    )


def files_under(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("atc_*") if path.is_file())


def test_upload_send_acknowledge_reload_and_delete(
    server: DevServerProcess, server_data_dir: Path
) -> None:
    image = create(server, "dot.png", "image/png", len(PNG))
    assert image.status_code == 200, image.text
    image_json = image.json()
    assert image_json["upload_descriptor"]["method"] == "PUT"
    assert "Authorization" not in image_json["upload_descriptor"]["headers"]
    assert upload(image_json, PNG).status_code == 200
    notes = b"Shopping list\nmilk\neggs\n"
    text = create(server, "notes.txt", "text/plain", len(notes)).json()
    assert upload(text, notes).status_code == 200

    created = send(server, "What did I send?", [image_json["id"], text["id"], image_json["id"]])
    assert created.status_code == 200, created.text
    streamed = events(created)
    said = answer(streamed)
    assert f'"dot.png" (image/png, {len(PNG)} B)' in said
    assert 'first line "Shopping list"' in said
    user_item = next(
        e["item"]
        for e in streamed
        if e["type"] == "thread.item.done" and e["item"]["type"] == "user_message"
    )
    assert [a["id"] for a in user_item["attachments"]] == [image_json["id"], text["id"]]
    thread_id = user_item["thread_id"]

    loaded = chatkit(server, {"type": "threads.get_by_id", "params": {"thread_id": thread_id}})
    item = next(i for i in loaded.json()["items"]["data"] if i["type"] == "user_message")
    preview = item["attachments"][0]["preview_url"]
    assert preview.startswith(f"{server.url}/attachments/local/files/")
    shown = httpx.get(preview, timeout=10)
    assert shown.status_code == 200
    assert shown.content == PNG
    assert shown.headers["content-type"] == "image/png"
    assert shown.headers["x-content-type-options"] == "nosniff"
    assert httpx.get(preview.replace("s=", "s=0"), timeout=10).status_code == 403

    detail = httpx.get(f"{server.url}/api/conversations/{thread_id}", timeout=10).json()
    sent = detail["messages"][0]["attachments"]
    assert [(a["name"], a["size"]) for a in sent] == [("dot.png", len(PNG)), ("notes.txt", 24)]
    assert httpx.get(sent[0]["preview_url"], timeout=10).content == PNG
    assert "preview_url" not in sent[1]

    data_dir = server_data_dir / "attachments"
    assert len(files_under(data_dir / "files")) == 2
    gone = httpx.delete(f"{server.url}/api/conversations/{thread_id}", timeout=10)
    assert gone.status_code == 200
    assert files_under(data_dir) == []
    assert httpx.get(preview, timeout=10).status_code == 404


def test_wrong_size_type_and_tampered_upload_urls_are_refused(server: DevServerProcess) -> None:
    attachment = create(server, "dot.png", "image/png", len(PNG)).json()
    descriptor = attachment["upload_descriptor"]
    url, headers = descriptor["url"], descriptor["headers"]

    assert httpx.put(url, content=PNG + b"x", headers=headers).status_code == 413
    assert httpx.put(url, content=PNG[:-1], headers=headers).status_code == 400
    assert httpx.put(url, content=PNG, headers={"Content-Type": "text/plain"}).status_code == 400
    for hostile in (
        f"{server.url}/attachments/local/../../etc/passwd",
        f"{server.url}/attachments/local/files/x/atc_1?t=image/png&n=1&e=1&s=0",
        url.split("?")[0],
    ):
        refused = httpx.put(hostile, content=PNG, headers=headers)
        assert refused.status_code in (400, 403, 404), (hostile, refused.status_code)
        assert refused.json()["detail"]
    tampered = url.replace(f"n={len(PNG)}", "n=7000")
    assert httpx.put(tampered, content=PNG, headers=headers).status_code == 403

    not_uploaded = send(server, "see", [attachment["id"]])
    assert not_uploaded.status_code == 400
    assert "Not uploaded" in not_uploaded.json()["detail"]


@pytest.mark.parametrize(
    ("name", "mime_type", "size", "status"),
    [
        ("big.png", "image/png", 10 * 1024 * 1024 + 1, 413),
        ("page.html", "text/html", 10, 400),
        ("empty.txt", "text/plain", 0, 400),
    ],
)
def test_create_refuses_before_any_url(
    server: DevServerProcess, name: str, mime_type: str, size: int, status: int
) -> None:
    refused = create(server, name, mime_type, size)
    assert refused.status_code == status
    assert "upload_descriptor" not in refused.text


def test_erasing_the_account_deletes_every_attachment_byte(
    server: DevServerProcess, server_data_dir: Path
) -> None:
    sent = create(server, "dot.png", "image/png", len(PNG)).json()
    assert upload(sent, PNG).status_code == 200
    pending = create(server, "later.png", "image/png", len(PNG)).json()
    assert upload(pending, PNG).status_code == 200
    created = send(server, "keep this", [sent["id"]])
    assert created.status_code == 200
    root = server_data_dir / "attachments"
    assert any(path.name == sent["id"] for path in files_under(root / "files"))
    assert any(path.name == pending["id"] for path in files_under(root / "uploads"))

    erased = httpx.delete(f"{server.url}/api/me", timeout=30)

    assert erased.status_code == 200, erased.text
    assert files_under(root) == []
