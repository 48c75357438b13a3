"""A model that writes its whole answer at once (a burst read in one socket read) is streamed.

Parsing a burst never awaits anything that is not ready, so unless the turn hands the loop
over, the run queues the entire answer before the first word is written to the client. The
server here is the real app under uvicorn with its ASGI ``send`` watched: the model notes, per
delta it produces, whether a text event has already been written to the socket.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
from agents.testing import ScriptedModel
from chat_app.app import create_app
from chatkit_backend.auth import build_authenticator
from chatkit_backend.caller import Caller
from chatkit_backend.db import Database

from tests.e2e.chat.chat_support import (
    factory_with,
    server_settings,
    stream,
    streamed_reply,
    text_deltas,
    user_input,
)
from tests.support.servers import UvicornThread, app_over

BURST = 400


class TextWritten:
    """An ASGI wrapper noting when the first text delta event was handed to the socket."""

    def __init__(self) -> None:
        self.written = False

    def around(self, app: Any) -> Any:
        async def watched(scope: Any, receive: Any, send: Any) -> None:
            async def noting(message: dict[str, Any]) -> None:
                await send(message)
                if b'.text_delta"' in message.get("body", b""):
                    self.written = True

            await app(scope, receive, noting)

        return watched


def burst(watch: TextWritten, seen: list[bool]) -> Iterator[str]:
    """The deltas of one burst; ``seen`` gets, per delta, whether text was written before it."""
    for index in range(BURST):
        seen.append(watch.written)
        yield f"w{index} "


async def test_the_first_words_of_a_burst_are_written_before_the_model_is_done(
    pg_url: str, alice: Caller
) -> None:
    watch, seen = TextWritten(), list[bool]()
    model = ScriptedModel()
    model.enqueue(streamed_reply(burst(watch, seen)))
    settings = server_settings(pg_url)
    database = Database.from_url(pg_url, settings)
    server = UvicornThread(
        app_over(
            database,
            lambda db: watch.around(
                create_app(
                    settings=settings,
                    database=db,
                    authenticator=build_authenticator(settings),
                    agent_factory=factory_with(model)(settings, db),
                )
            ),
        ),
        name="burst-chat-server",
    ).start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            body = {"type": "threads.create", "params": {"input": user_input("Tell me")}}
            streamed = await stream(client, alice, body)
    finally:
        server.stop()

    assert len(text_deltas(streamed.events)) == BURST  # the whole answer arrived
    assert len(seen) == BURST
    # Text reached the socket while the model was still producing its burst (held back, it
    # would be written only after the last delta).
    assert True in seen
