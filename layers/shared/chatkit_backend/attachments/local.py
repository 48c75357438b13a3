"""The local adapter of :class:`~chatkit_backend.attachments.storage.BlobStorage`: files under
``DATA_DIR/attachments``, uploaded and previewed through the server's own signed route.

What S3's presigned URLs do, done by :class:`LocalAttachmentRoutes` in front of the chat app:
``PUT /attachments/local/<key>`` takes exactly the signed size and type before the URL expires
(the only route that takes a binary body: it sits outside the input guard), and ``GET`` serves
a preview with its signed type, ``nosniff`` and a sandboxing CSP. URLs carry an HMAC-SHA256 over
method, key, type, size and expiry, keyed by a random secret created once under ``DATA_DIR``
(mode 0600), so a URL cannot be altered or reused past its expiry. URLs are absolute: the base is
the origin of the request being answered (:data:`PUBLIC_BASE_URL`, set by the same middleware).
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Sequence
from datetime import datetime
from functools import cached_property
from pathlib import Path
from urllib.parse import quote, urlencode

from starlette.datastructures import Headers, QueryParams
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from ..errors import error_body
from .storage import KEY, UploadTarget

ROUTE_PREFIX = "/attachments/local/"
SIGNING_KEY_FILE = ".signing-key"

PUBLIC_BASE_URL: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "attachments_public_base_url", default=None
)
"""Origin of the request being answered (``http://127.0.0.1:8000``): the base of local URLs."""


class Signer:
    """HMAC-SHA256 signatures of local attachment URLs (see the module docstring)."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    @classmethod
    def under(cls, folder: Path) -> Signer:
        """The signer whose secret lives in ``folder`` (created at random on first use)."""
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / SIGNING_KEY_FILE
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return cls(path.read_bytes())
        secret = secrets.token_bytes(32)
        with os.fdopen(descriptor, "wb") as file:
            file.write(secret)
        return cls(secret)

    def sign(self, method: str, key: str, mime_type: str, size: int, expires: int) -> str:
        message = f"{method}\n{key}\n{mime_type}\n{size}\n{expires}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def valid(
        self, method: str, key: str, mime_type: str, size: int, expires: int, signature: str
    ) -> bool:
        expected = self.sign(method, key, mime_type, size, expires)
        return hmac.compare_digest(expected, signature) and time.time() < expires


class LocalStorage:
    """Attachment files under ``root`` (see the module docstring)."""

    def __init__(
        self, root: Path, *, upload_seconds: int, preview_seconds: int, signer: Signer | None = None
    ) -> None:
        self.root = root
        self.upload_seconds = upload_seconds
        self.preview_seconds = preview_seconds
        if signer is not None:
            self.__dict__["signer"] = signer

    @cached_property
    def signer(self) -> Signer:
        """Made on first use, so building an app touches no file (a read-only disk fails only
        if attachments are actually used without a bucket)."""
        return Signer.under(self.root)

    def upload_target(self, key: str, mime_type: str, size: int) -> UploadTarget:
        url = self._url("PUT", key, mime_type, size, self.upload_seconds)
        return UploadTarget(url=url, method="PUT", headers={"Content-Type": mime_type})

    def download_url(self, key: str, mime_type: str) -> str:
        return self._url("GET", key, mime_type, 0, self.preview_seconds)

    def path(self, key: str) -> Path:
        if not KEY.fullmatch(key):
            raise ValueError("not an attachment key")
        return self.root / key

    async def size(self, key: str) -> int | None:
        try:
            return self.path(key).stat().st_size
        except FileNotFoundError:
            return None

    async def read(self, key: str) -> bytes:
        return await asyncio.to_thread(self.path(key).read_bytes)

    async def move(self, source: str, target: str) -> None:
        destination = self.path(target)
        destination.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.path(source), destination)

    async def delete(self, keys: Sequence[str]) -> None:
        for key in keys:
            self.path(key).unlink(missing_ok=True)

    async def delete_prefix(self, prefix: str, *, older_than: datetime | None = None) -> int:
        folder = self.root / prefix
        if not folder.is_dir() or not prefix.endswith("/") or ".." in prefix:
            return 0
        cutoff = older_than.timestamp() if older_than is not None else None
        deleted = 0
        for path in folder.rglob("atc_*"):
            if cutoff is None or path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)
                deleted += 1
        return deleted

    def _url(self, method: str, key: str, mime_type: str, size: int, lifetime: int) -> str:
        base = PUBLIC_BASE_URL.get()
        if base is None:
            raise RuntimeError("local attachment URLs need the request's origin (no middleware)")
        expires = int(time.time()) + lifetime
        query = {"t": mime_type, "n": str(size), "e": str(expires)}
        query["s"] = self.signer.sign(method, key, mime_type, size, expires)
        return f"{base}{ROUTE_PREFIX}{quote(key)}?{urlencode(query)}"


class LocalAttachmentRoutes:
    """The signed upload/preview route of :class:`LocalStorage`, in front of ``app``.

    Every other request goes to ``app`` with :data:`PUBLIC_BASE_URL` set to its origin.
    """

    def __init__(self, app: ASGIApp, storage: LocalStorage) -> None:
        self.app = app
        self.storage = storage

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = PUBLIC_BASE_URL.set(_origin(scope))
        try:
            if scope["path"].startswith(ROUTE_PREFIX):
                response = await self._serve(scope, receive)
                await response(scope, receive, send)
            else:
                await self.app(scope, receive, send)
        finally:
            PUBLIC_BASE_URL.reset(token)

    async def _serve(self, scope: Scope, receive: Receive) -> Response:
        key = scope["path"][len(ROUTE_PREFIX) :]
        query = QueryParams(scope.get("query_string", b""))
        method = scope["method"]
        try:
            mime_type, size, expires = query["t"], int(query["n"]), int(query["e"])
            signature = query["s"]
        except (KeyError, ValueError):
            return _error(403, "Invalid or expired attachment URL")
        if method not in ("PUT", "GET", "HEAD") or not KEY.fullmatch(key):
            return _error(404, "Not found")
        signed_method = "PUT" if method == "PUT" else "GET"
        if not self.storage.signer.valid(signed_method, key, mime_type, size, expires, signature):
            return _error(403, "Invalid or expired attachment URL")
        if method == "PUT":
            return await self._upload(scope, receive, key, mime_type, size)
        path = self.storage.path(key)
        if not path.is_file():
            return _error(404, "Not found")
        return FileResponse(
            path,
            media_type=mime_type,
            headers={
                "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": "default-src 'none'; sandbox",
                "Cache-Control": "private, max-age=300",
            },
        )

    async def _upload(
        self, scope: Scope, receive: Receive, key: str, mime_type: str, size: int
    ) -> Response:
        headers = Headers(scope=scope)
        sent_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if sent_type != mime_type:
            return _error(400, f"Content-Type must be {mime_type}")
        declared = headers.get("content-length")
        if declared is None or not declared.isdigit():
            return _error(411, "Content-Length is required")
        if int(declared) != size:
            status = 413 if int(declared) > size else 400
            return _error(status, f"The upload must be exactly {size} bytes")
        path = self.storage.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.{secrets.token_hex(4)}.part")
        received = 0
        try:
            with partial.open("wb") as file:
                while True:
                    message = await receive()
                    if message["type"] != "http.request":
                        return _error(400, "The upload was interrupted")
                    chunk = message.get("body", b"")
                    received += len(chunk)
                    if received > size:
                        return _error(413, f"The upload must be exactly {size} bytes")
                    file.write(chunk)
                    if not message.get("more_body", False):
                        break
            if received != size:
                return _error(400, f"The upload must be exactly {size} bytes")
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)
        return JSONResponse({"status": "uploaded", "size": size})


def _origin(scope: Scope) -> str:
    headers = Headers(scope=scope)
    host = headers.get("host")
    if not host:
        server = scope.get("server") or ("127.0.0.1", 80)
        host = f"{server[0]}:{server[1]}"
    return f"{scope.get('scheme', 'http')}://{host}"


def _error(status: int, message: str) -> Response:
    return JSONResponse(error_body(message), status_code=status)
