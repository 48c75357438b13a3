"""Attachments in the store: create (two-phase upload's first step), upsert, load, delete, and the
bytes that go with them (local adapter under a temporary folder, real files)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from chatkit.store import NotFoundError
from chatkit.types import (
    AttachmentCreateParams,
    FileAttachment,
    ImageAttachment,
    UserMessageItem,
    UserMessageTextContent,
)
from chatkit_backend.attachments import AttachmentFiles, LocalStorage
from chatkit_backend.attachments.local import PUBLIC_BASE_URL
from chatkit_backend.attachments.storage import file_key, upload_key
from chatkit_backend.caller import Caller
from chatkit_backend.db import Database
from chatkit_backend.errors import BadRequest, PayloadTooLarge
from chatkit_backend.ids import new_id
from chatkit_backend.settings import Settings
from chatkit_backend.store import PostgresStore
from chatkit_backend.tables import ATTACHMENTS, ITEMS, utcnow
from pydantic import AnyUrl

from tests.integration.core.store.store_samples import saved_thread, table_rows

BASE = "http://testserver"


@pytest.fixture
def files(tmp_path: Path) -> Iterator[AttachmentFiles]:
    token = PUBLIC_BASE_URL.set(BASE)
    settings = Settings(data_dir=tmp_path)
    storage = LocalStorage(tmp_path / "attachments", upload_seconds=60, preview_seconds=60)
    yield AttachmentFiles(storage, settings)
    PUBLIC_BASE_URL.reset(token)


@pytest.fixture
def with_files(database: Database, files: AttachmentFiles) -> PostgresStore:
    return PostgresStore(database, files)


def file_attachment(**fields: object) -> FileAttachment:
    return FileAttachment.model_validate(
        {"id": new_id("attachment"), "name": "notes.txt", "mime_type": "text/plain", **fields}
    )


def put_bytes(files: AttachmentFiles, key: str, data: bytes) -> None:
    assert files.local is not None
    path = files.local.path(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


@pytest.mark.parametrize(
    ("mime_type", "kind"),
    [("image/png", ImageAttachment), ("IMAGE/JPEG", ImageAttachment), ("text/csv", FileAttachment)],
)
async def test_create_attachment_signs_an_upload_of_the_right_kind(
    with_files: PostgresStore, alice: Caller, mime_type: str, kind: type
) -> None:
    params = AttachmentCreateParams(name="upload", size=2048, mime_type=mime_type)

    attachment = await with_files.create_attachment(params, alice)

    assert type(attachment) is kind
    assert re.fullmatch(r"atc_[0-9a-f]{32}", attachment.id)
    assert (attachment.name, attachment.mime_type) == ("upload", mime_type.lower())
    assert attachment.metadata == {"size": 2048}
    descriptor = attachment.upload_descriptor
    assert descriptor is not None
    assert descriptor.method == "PUT"
    assert descriptor.headers == {"Content-Type": mime_type.lower()}
    upload = str(descriptor.url)
    assert upload.startswith(
        f"{BASE}/attachments/local/{upload_key(alice.user_id, attachment.id)}?"
    )
    if isinstance(attachment, ImageAttachment):
        assert "/attachments/local/uploads/" in str(attachment.preview_url)

    await with_files.save_attachment(attachment, alice)

    rows = await table_rows(with_files.database, ATTACHMENTS, id=attachment.id)
    assert rows[0].data["upload_descriptor"] is None
    if isinstance(attachment, ImageAttachment):
        assert rows[0].data["preview_url"] == f"attachment://{attachment.id}"
    loaded = await with_files.load_attachment(attachment.id, alice)
    assert loaded.upload_descriptor is None
    assert loaded.metadata == {"size": 2048}


@pytest.mark.parametrize(
    ("params", "error"),
    [
        (
            AttachmentCreateParams(name="a.png", size=10 * 1024 * 1024 + 1, mime_type="image/png"),
            PayloadTooLarge,
        ),
        (AttachmentCreateParams(name="a.html", size=5, mime_type="text/html"), BadRequest),
        (AttachmentCreateParams(name="a.svg", size=5, mime_type="image/svg+xml"), BadRequest),
        (AttachmentCreateParams(name="", size=5, mime_type="text/plain"), BadRequest),
        (AttachmentCreateParams(name="a.txt", size=0, mime_type="text/plain"), BadRequest),
    ],
)
async def test_create_refuses_what_no_upload_may_hold(
    with_files: PostgresStore, alice: Caller, params: AttachmentCreateParams, error: type
) -> None:
    with pytest.raises(error):
        await with_files.create_attachment(params, alice)


async def test_without_files_create_is_refused_and_attachments_are_kept_as_given(
    store: PostgresStore, alice: Caller
) -> None:
    with pytest.raises(BadRequest):
        await store.create_attachment(
            AttachmentCreateParams(name="a.txt", size=1, mime_type="text/plain"), alice
        )
    image = ImageAttachment(
        id=new_id("attachment"),
        name="cat.png",
        mime_type="image/png",
        preview_url=AnyUrl("https://cdn.example.com/cat.png"),
    )
    await store.save_attachment(image, alice)
    assert await store.load_attachment(image.id, alice) == image


async def test_save_attachment_upserts_and_fills_the_thread_column(
    store: PostgresStore, database: Database, alice: Caller
) -> None:
    thread = await saved_thread(store, alice)
    attachment = file_attachment()
    await store.save_attachment(attachment, alice)
    attached = attachment.model_copy(update={"thread_id": thread.id, "metadata": {"k": "v"}})

    await store.save_attachment(attached, alice)

    assert await store.load_attachment(attachment.id, alice) == attached
    rows = await table_rows(database, ATTACHMENTS, user_id=alice.user_id, id=attachment.id)
    assert [row.thread_id for row in rows] == [thread.id]


async def test_messages_keep_stable_names_and_load_with_fresh_previews(
    with_files: PostgresStore, files: AttachmentFiles, alice: Caller
) -> None:
    thread = await saved_thread(with_files, alice)
    image = ImageAttachment(
        id=new_id("attachment"),
        name="cat.png",
        mime_type="image/png",
        thread_id=thread.id,
        preview_url=AnyUrl(f"{BASE}/attachments/local/old?e=1"),
    )
    message = UserMessageItem(
        id=new_id("message"),
        thread_id=thread.id,
        created_at=utcnow(),
        content=[UserMessageTextContent(text="look")],
        attachments=[image],
        inference_options={},
    )

    await with_files.add_thread_item(thread.id, message, alice)

    rows = await table_rows(with_files.database, ITEMS, id=message.id)
    assert rows[0].data["attachments"][0]["preview_url"] == f"attachment://{image.id}"
    loaded = await with_files.load_item(thread.id, message.id, alice)
    assert isinstance(loaded, UserMessageItem)
    preview = str(loaded.attachments[0].preview_url)  # type: ignore[union-attr]
    assert preview.startswith(f"{BASE}/attachments/local/{file_key(alice.user_id, image.id)}?")
    page = await with_files.load_thread_items(thread.id, None, 10, "asc", alice)
    assert str(page.data[0].attachments[0].preview_url).startswith(f"{BASE}/")  # type: ignore[union-attr]


async def test_delete_attachment_removes_row_and_bytes_and_missing_is_a_no_op(
    with_files: PostgresStore,
    files: AttachmentFiles,
    database: Database,
    alice: Caller,
    bob: Caller,
) -> None:
    doomed, kept = file_attachment(), file_attachment()
    for attachment in (doomed, kept):
        await with_files.save_attachment(attachment, alice)
        put_bytes(files, file_key(alice.user_id, attachment.id), b"hello")
    await with_files.delete_attachment(doomed.id, bob)  # another user's delete: nothing happens
    assert await files.storage.size(file_key(alice.user_id, doomed.id)) == 5

    await with_files.delete_attachment(doomed.id, alice)
    await with_files.delete_attachment(doomed.id, alice)

    rows = await table_rows(database, ATTACHMENTS, user_id=alice.user_id)
    assert [row.id for row in rows] == [kept.id]
    assert await files.storage.size(file_key(alice.user_id, doomed.id)) is None
    assert await files.storage.size(file_key(alice.user_id, kept.id)) == 5
    with pytest.raises(NotFoundError):
        await with_files.load_attachment(doomed.id, alice)


async def test_deleting_a_thread_deletes_its_attachments_and_their_bytes_only(
    with_files: PostgresStore, files: AttachmentFiles, database: Database, alice: Caller
) -> None:
    thread = await saved_thread(with_files, alice)
    bound = file_attachment(thread_id=thread.id)
    unbound = file_attachment()
    for attachment in (bound, unbound):
        await with_files.save_attachment(attachment, alice)
        put_bytes(files, file_key(alice.user_id, attachment.id), b"bytes")

    await with_files.delete_thread(thread.id, alice)

    assert await table_rows(database, ATTACHMENTS, user_id=alice.user_id, id=bound.id) == []
    assert await files.storage.size(file_key(alice.user_id, bound.id)) is None
    assert await files.storage.size(file_key(alice.user_id, unbound.id)) == 5
    assert (await with_files.load_attachment(unbound.id, alice)).id == unbound.id


async def test_unsent_attachments_expire_with_their_bytes(
    with_files: PostgresStore, files: AttachmentFiles, database: Database, alice: Caller
) -> None:
    thread = await saved_thread(with_files, alice)
    old, sent = file_attachment(), file_attachment(thread_id=thread.id)
    for attachment in (old, sent):
        await with_files.save_attachment(attachment, alice)
    put_bytes(files, upload_key(alice.user_id, old.id), b"pending")
    put_bytes(files, file_key(alice.user_id, sent.id), b"sent")

    await files.expire_unsent(database, utcnow())  # younger than a day: kept
    assert len(await table_rows(database, ATTACHMENTS, user_id=alice.user_id)) == 2
    assert await files.expire_unsent(database, utcnow() + timedelta(days=2)) >= 1

    assert [row.id for row in await table_rows(database, ATTACHMENTS, user_id=alice.user_id)] == [
        sent.id
    ]
    assert await files.storage.size(upload_key(alice.user_id, old.id)) is None
    assert await files.storage.size(file_key(alice.user_id, sent.id)) == 4


async def test_a_users_bytes_are_deleted_whole(
    files: AttachmentFiles, alice: Caller, bob: Caller
) -> None:
    mine, theirs = new_id("attachment"), new_id("attachment")
    put_bytes(files, upload_key(alice.user_id, mine), b"a")
    put_bytes(files, file_key(alice.user_id, new_id("attachment")), b"b")
    put_bytes(files, file_key(bob.user_id, theirs), b"c")

    assert await files.delete_user(alice.user_id) == 2

    assert await files.storage.size(file_key(bob.user_id, theirs)) == 1


async def test_an_attachment_cannot_be_bound_to_a_missing_thread(
    store: PostgresStore, database: Database, alice: Caller
) -> None:
    attachment = file_attachment(thread_id=new_id("thread"))

    with pytest.raises(NotFoundError):
        await store.save_attachment(attachment, alice)

    assert await table_rows(database, ATTACHMENTS, user_id=alice.user_id, id=attachment.id) == []
