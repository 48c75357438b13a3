"""Attachment rules without I/O: limits and types, id de-duplication, keys, local URL signatures."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest
from chatkit_backend.attachments import AttachmentPolicy, distinct_ids, kind_of
from chatkit_backend.attachments.local import Signer
from chatkit_backend.attachments.storage import KEY, file_key, upload_key, user_prefixes
from chatkit_backend.errors import BadRequest, PayloadTooLarge
from chatkit_backend.ids import new_id
from chatkit_backend.settings import Settings


def test_policy_accepts_the_allow_list_and_refuses_the_rest() -> None:
    policy = AttachmentPolicy.from_settings(Settings())
    assert policy.check_new("a.png", 1, "IMAGE/PNG") == "image/png"
    assert policy.check_new("a.txt", 1, "text/plain; charset=utf-8") == "text/plain"
    with pytest.raises(PayloadTooLarge):
        policy.check_new("a.png", policy.max_bytes + 1, "image/png")
    for name, size, mime_type in [
        ("a.svg", 1, "image/svg+xml"),
        ("a.html", 1, "text/html"),
        ("a.bin", 1, ""),
        (" ", 1, "text/plain"),
        ("x" * 256, 1, "text/plain"),
        ("a.txt", 0, "text/plain"),
        ("a.txt", -5, "text/plain"),
    ]:
        with pytest.raises(BadRequest):
            policy.check_new(name, size, mime_type)


def test_attachment_types_are_settable_as_a_comma_list() -> None:
    settings = Settings(attachment_types="image/png, text/csv")
    policy = AttachmentPolicy.from_settings(settings)
    assert policy.types == {"image/png", "text/csv"}
    with pytest.raises(BadRequest):
        policy.check_new("a.pdf", 1, "application/pdf")


def test_kinds() -> None:
    assert [
        kind_of(t) for t in ("image/webp", "application/pdf", "text/csv", "application/json")
    ] == [
        "image",
        "pdf",
        "text",
        "text",
    ]


def test_ids_are_deduplicated_in_order_and_capped() -> None:
    a, b = new_id("attachment"), new_id("attachment")
    assert distinct_ids([a, b, a, a]) == [a, b]
    assert len(distinct_ids([new_id("attachment") for _ in range(10)])) == 10
    with pytest.raises(BadRequest, match="at most 10"):
        distinct_ids([new_id("attachment") for _ in range(11)])
    with pytest.raises(BadRequest, match="references"):
        distinct_ids([a] * 2000)


def test_keys_are_per_user_and_only_of_real_ids() -> None:
    attachment = new_id("attachment")
    uploads, files = user_prefixes("alice@example.com")
    assert upload_key("alice@example.com", attachment).startswith(uploads)
    assert file_key("alice@example.com", attachment).startswith(files)
    assert KEY.fullmatch(file_key("../../etc", attachment))
    assert user_prefixes("bob") != (uploads, files)
    with pytest.raises(ValueError, match="not an attachment id"):
        file_key("alice", "../../etc/passwd")


def test_signatures_bind_every_field_and_expire(tmp_path: Path) -> None:
    signer = Signer.under(tmp_path)
    key = file_key("alice", new_id("attachment"))
    expires = int(time.time()) + 60
    signature = signer.sign("PUT", key, "image/png", 10, expires)
    assert signer.valid("PUT", key, "image/png", 10, expires, signature)
    assert not signer.valid("GET", key, "image/png", 10, expires, signature)
    assert not signer.valid("PUT", key, "image/gif", 10, expires, signature)
    assert not signer.valid("PUT", key, "image/png", 11, expires, signature)
    assert not signer.valid("PUT", key, "image/png", 10, expires + 1, signature)
    past = int(time.time()) - 1
    assert not signer.valid(
        "PUT", key, "image/png", 10, past, signer.sign("PUT", key, "image/png", 10, past)
    )


def test_the_local_signing_key_is_private_and_kept(tmp_path: Path) -> None:
    first = Signer.under(tmp_path)
    mode = stat.S_IMODE(os.stat(tmp_path / ".signing-key").st_mode)
    assert mode == 0o600
    again = Signer.under(tmp_path)
    expires = int(time.time()) + 60
    assert first.sign("GET", "k", "t", 0, expires) == again.sign("GET", "k", "t", 0, expires)
    other = Signer.under(tmp_path / "elsewhere")
    assert other.sign("GET", "k", "t", 0, expires) != first.sign("GET", "k", "t", 0, expires)
