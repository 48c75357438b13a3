"""Attachment metadata: create (two-phase upload's first step), upsert, load, delete."""

from __future__ import annotations

import re

import pytest
from chatkit.store import NotFoundError
from chatkit.types import AttachmentCreateParams, FileAttachment, ImageAttachment
from chatkit_backend.caller import Caller
from chatkit_backend.db import Database
from chatkit_backend.ids import new_id
from chatkit_backend.store import PostgresStore
from chatkit_backend.tables import ATTACHMENTS
from pydantic import AnyUrl

from tests.integration.core.store.store_samples import saved_thread, table_rows


def file_attachment(**fields: object) -> FileAttachment:
    return FileAttachment.model_validate(
        {"id": new_id("attachment"), "name": "notes.txt", "mime_type": "text/plain", **fields}
    )


@pytest.mark.parametrize(
    ("mime_type", "kind"),
    [("image/png", ImageAttachment), ("IMAGE/JPEG", ImageAttachment), ("text/csv", FileAttachment)],
)
async def test_create_attachment_persists_metadata_of_the_right_kind(
    store: PostgresStore, alice: Caller, mime_type: str, kind: type
) -> None:
    params = AttachmentCreateParams(name="upload", size=2048, mime_type=mime_type)

    attachment = await store.create_attachment(params, alice)

    assert type(attachment) is kind
    assert re.fullmatch(r"atc_[0-9a-f]{32}", attachment.id)
    assert (attachment.name, attachment.mime_type) == ("upload", mime_type)
    assert attachment.upload_descriptor is None
    assert attachment.thread_id is None
    assert attachment.metadata == {"size": 2048}
    if isinstance(attachment, ImageAttachment):
        assert str(attachment.preview_url) == f"attachment://{attachment.id}"
    assert await store.load_attachment(attachment.id, alice) == attachment


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


async def test_image_attachment_round_trips(store: PostgresStore, alice: Caller) -> None:
    image = ImageAttachment(
        id=new_id("attachment"),
        name="cat.png",
        mime_type="image/png",
        preview_url=AnyUrl("https://cdn.example.com/cat.png"),
    )

    await store.save_attachment(image, alice)

    assert await store.load_attachment(image.id, alice) == image


async def test_load_of_a_missing_attachment_raises_not_found(
    store: PostgresStore, alice: Caller
) -> None:
    with pytest.raises(NotFoundError):
        await store.load_attachment("atc_missing", alice)


async def test_delete_attachment_removes_it_and_missing_is_a_no_op(
    store: PostgresStore, database: Database, alice: Caller
) -> None:
    doomed, kept = file_attachment(), file_attachment()
    for attachment in (doomed, kept):
        await store.save_attachment(attachment, alice)

    await store.delete_attachment(doomed.id, alice)
    await store.delete_attachment(doomed.id, alice)

    rows = await table_rows(database, ATTACHMENTS, user_id=alice.user_id)
    assert [row.id for row in rows] == [kept.id]
    with pytest.raises(NotFoundError):
        await store.load_attachment(doomed.id, alice)


async def test_deleting_a_thread_deletes_its_attachments_only(
    store: PostgresStore, database: Database, alice: Caller
) -> None:
    thread = await saved_thread(store, alice)
    bound = file_attachment(thread_id=thread.id)
    unbound = file_attachment()
    await store.save_attachment(bound, alice)
    await store.save_attachment(unbound, alice)

    await store.delete_thread(thread.id, alice)

    assert await table_rows(database, ATTACHMENTS, user_id=alice.user_id, id=bound.id) == []
    assert await store.load_attachment(unbound.id, alice) == unbound


async def test_an_attachment_cannot_be_bound_to_a_missing_thread(
    store: PostgresStore, database: Database, alice: Caller
) -> None:
    attachment = file_attachment(thread_id=new_id("thread"))

    with pytest.raises(NotFoundError):
        await store.save_attachment(attachment, alice)

    assert await table_rows(database, ATTACHMENTS, user_id=alice.user_id, id=attachment.id) == []
