"""A TCP proxy on 127.0.0.1 that a test can cut and restore: a database outage on demand.

Cutting closes the listener and every open connection (the server "goes away"); restoring
listens again on the same port, so clients configured with the proxy's address recover without
being rebuilt. It runs on the test's own event loop. ``observe`` (optional) sees every chunk
that passes: the connection it belongs to and whether it went to the server (the benchmark's
round-trip count).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

Observer = Callable[[object, bool], None]
"""Called per chunk with its connection's key and ``True`` for client -> server."""


class TcpProxy:
    def __init__(self, target_host: str, target_port: int, observe: Observer | None = None) -> None:
        self._target = (target_host, target_port)
        self._observe = observe
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        """Refuse new connections and drop the open ones."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if server is not None:  # waits for the connection handlers, which the aborts ended
            await server.wait_closed()

    async def restore(self) -> None:
        await self.start()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, upstream_writer))
        key = object()
        pumps = [
            asyncio.create_task(_pump(reader, upstream_writer, self._noting(key, True))),
            asyncio.create_task(_pump(upstream_reader, writer, self._noting(key, False))),
        ]
        self._tasks.update(pumps)
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            self._tasks.difference_update(pumps)
            for end in (writer, upstream_writer):
                self._writers.discard(end)
                end.transport.abort()

    def _noting(self, key: object, upstream: bool) -> Callable[[], None] | None:
        observe = self._observe
        return None if observe is None else lambda: observe(key, upstream)


async def _pump(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    note: Callable[[], None] | None = None,
) -> None:
    with contextlib.suppress(OSError, asyncio.IncompleteReadError):
        while data := await reader.read(65536):
            if note is not None:
                note()
            writer.write(data)
            await writer.drain()
