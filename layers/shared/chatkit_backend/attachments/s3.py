"""The S3 adapter of :class:`~chatkit_backend.attachments.storage.BlobStorage`.

Uploads are presigned ``PUT`` URLs with ``Content-Type`` and ``Content-Length`` in the signature,
so S3 itself refuses a body of another type or size; previews are presigned ``GET`` URLs. Both
are computed locally (no request to S3). boto3 is synchronous: the calls that do reach S3 run in
a worker thread. The client is made on first use, so a process that never touches attachments
never pays for it. The endpoint follows boto3's own configuration (``AWS_ENDPOINT_URL_S3`` for
tests against moto's server).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from functools import cached_property
from typing import Any

from .storage import UploadTarget

DELETE_BATCH = 1000
"""Keys per ``DeleteObjects`` call (S3's limit)."""


class S3Storage:
    """Attachment bytes in one private bucket (see the module docstring)."""

    def __init__(
        self,
        bucket: str,
        *,
        upload_seconds: int,
        preview_seconds: int,
        client: Any | None = None,
    ) -> None:
        self.bucket = bucket
        self.upload_seconds = upload_seconds
        self.preview_seconds = preview_seconds
        if client is not None:
            self.__dict__["client"] = client

    @cached_property
    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        # SigV4 (the regional endpoint a browser can reach without a redirect); checksums only
        # when required, or presigned PUTs would expect a checksum header browsers never send.
        config = Config(
            signature_version="s3v4",
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            retries={"max_attempts": 3, "mode": "standard"},
        )
        return boto3.client("s3", config=config)

    def upload_target(self, key: str, mime_type: str, size: int) -> UploadTarget:
        url = self.client.generate_presigned_url(
            "put_object",
            Params={
                "Bucket": self.bucket,
                "Key": key,
                "ContentType": mime_type,
                "ContentLength": size,
            },
            ExpiresIn=self.upload_seconds,
            HttpMethod="PUT",
        )
        return UploadTarget(url=url, method="PUT", headers={"Content-Type": mime_type})

    def download_url(self, key: str, mime_type: str) -> str:
        return str(
            self.client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": key, "ResponseContentType": mime_type},
                ExpiresIn=self.preview_seconds,
            )
        )

    async def size(self, key: str) -> int | None:
        from botocore.exceptions import ClientError

        try:
            head = await asyncio.to_thread(self.client.head_object, Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _missing(exc):
                return None
            raise
        return int(head["ContentLength"])

    async def read(self, key: str) -> bytes:
        from botocore.exceptions import ClientError

        def get() -> bytes:
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
            with body:
                return bytes(body.read())

        try:
            return await asyncio.to_thread(get)
        except ClientError as exc:
            if _missing(exc):
                raise FileNotFoundError(key) from exc
            raise

    async def move(self, source: str, target: str) -> None:
        def copy_then_delete() -> None:
            self.client.copy_object(
                Bucket=self.bucket,
                Key=target,
                CopySource={"Bucket": self.bucket, "Key": source},
                MetadataDirective="COPY",
            )
            self.client.delete_object(Bucket=self.bucket, Key=source)

        await asyncio.to_thread(copy_then_delete)

    async def delete(self, keys: Sequence[str]) -> None:
        await asyncio.to_thread(self._delete_now, list(keys))

    async def delete_prefix(self, prefix: str, *, older_than: datetime | None = None) -> int:
        def delete_listed() -> int:
            deleted = 0
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                keys = [
                    entry["Key"]
                    for entry in page.get("Contents", [])
                    if older_than is None or entry["LastModified"] < older_than
                ]
                self._delete_now(keys)
                deleted += len(keys)
            return deleted

        return await asyncio.to_thread(delete_listed)

    def _delete_now(self, keys: list[str]) -> None:
        for start in range(0, len(keys), DELETE_BATCH):
            batch = keys[start : start + DELETE_BATCH]
            answer = self.client.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True},
            )
            if answer.get("Errors"):
                failed = answer["Errors"][0]
                raise RuntimeError(
                    f"S3 refused to delete {failed.get('Key')}: {failed.get('Code')}"
                )


def _missing(exc: Any) -> bool:
    """No such object. Without ``s3:ListBucket`` (the roles have none) S3 answers a missing key
    with 403, not 404: to these roles both mean "not there"."""
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    code = exc.response.get("Error", {}).get("Code")
    return status in (403, 404) or code in ("403", "404", "NoSuchKey", "NotFound", "AccessDenied")
