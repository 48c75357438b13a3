"""A stand-in for CloudFormation's pre-signed response URL: a real HTTP server on 127.0.0.1.

It records every PUT (path, headers, JSON body) so tests can assert what the custom resource
answered, how often, and with which headers; :meth:`ResponseServer.refuse` makes it answer 500
to the next requests (they are not recorded), to exercise retries.
"""

from __future__ import annotations

import json
import os
import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

LOOPBACK_FLAG = "CUSTOM_RESOURCE_LOOPBACK_RESPONSES"
"""``custom_resource.LOOPBACK_FLAG`` (not imported: the function's folder is not a package)."""


@dataclass(frozen=True)
class ReceivedResponse:
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class ResponseServer:
    """Records PUTs and answers 200, except to requests it was told to refuse."""

    def __init__(self) -> None:
        self.received: queue.Queue[ReceivedResponse] = queue.Queue()
        self.refused = 0
        self._to_refuse = 0
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length))
                with owner._lock:
                    refuse = owner._to_refuse > 0
                    if refuse:
                        owner._to_refuse -= 1
                        owner.refused += 1
                if not refuse:
                    headers = {key.lower(): value for key, value in self.headers.items()}
                    path = self.path.split("?", 1)[0]
                    owner.received.put(ReceivedResponse("PUT", path, headers, body))
                self.send_response(500 if refuse else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                """Keep test output quiet."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    @contextmanager
    def running(self) -> Iterator[None]:
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield
        finally:
            self._server.shutdown()
            self._server.server_close()
            thread.join()

    def refuse(self, count: int) -> None:
        """Answer 500 to the next ``count`` requests."""
        with self._lock:
            self._to_refuse = count

    def url(self, path: str = "/cfn-response") -> str:
        """A URL shaped like a pre-signed one (the query string must survive the round trip)."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{path}?X-Amz-Signature=test-signature"

    def next_response(self, timeout: float = 30.0) -> ReceivedResponse:
        """The next PUT received (blocks until one arrives)."""
        return self.received.get(timeout=timeout)

    def pending(self) -> list[ReceivedResponse]:
        """Everything received and not taken yet."""
        items: list[ReceivedResponse] = []
        while not self.received.empty():
            items.append(self.received.get_nowait())
        return items


@contextmanager
def response_server() -> Iterator[ResponseServer]:
    """A running :class:`ResponseServer` (a thread), shut down at the end of the block.

    While it runs, the custom resource accepts loopback ResponseURLs (it answers only pre-signed
    S3 URLs otherwise: ``custom_resource.LOOPBACK_FLAG``).
    """
    server = ResponseServer()
    previous = os.environ.get(LOOPBACK_FLAG)
    os.environ[LOOPBACK_FLAG] = "true"
    try:
        with server.running():
            yield server
    finally:
        if previous is None:
            os.environ.pop(LOOPBACK_FLAG, None)
        else:
            os.environ[LOOPBACK_FLAG] = previous
