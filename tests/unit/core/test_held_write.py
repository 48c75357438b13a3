"""The held insert of a new message: held once, started once (by the model call, a later write
or the end of the turn's head), awaited by the response, its failure raised to every waiter and
never left unretrieved."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest
from chatkit_backend.held_write import HELD_WRITE, HeldWrite, flush_held_write, release_held_write


class Writes:
    """Writes that note when they ran; ``fail`` makes them raise."""

    def __init__(self, fail: bool = False) -> None:
        self.ran: list[str] = []
        self.fail = fail

    def write(self, name: str) -> Any:
        async def run() -> None:
            await asyncio.sleep(0)
            self.ran.append(name)
            if self.fail:
                raise ConnectionError(name)

        return run


async def test_a_held_write_waits_for_its_release_and_runs_once() -> None:
    writes = Writes()
    held = HeldWrite()
    assert held.hold(writes.write("message"))
    assert not held.hold(writes.write("second"))  # one write per turn

    stored = asyncio.ensure_future(held.stored())
    await asyncio.sleep(0.01)
    assert writes.ran == []
    assert not stored.done()  # the response waits for the write, which waits for the model

    held.release()
    held.release()
    await stored
    assert writes.ran == ["message"]


async def test_the_turns_other_writes_start_it_and_come_after_it() -> None:
    writes = Writes()
    held = HeldWrite()
    token = HELD_WRITE.set(held)
    try:
        held.hold(writes.write("message"))
        await flush_held_write()
        writes.ran.append("answer")
        release_held_write()  # the model call, later: nothing more to start
    finally:
        HELD_WRITE.reset(token)
    assert writes.ran == ["message", "answer"]


async def test_with_nothing_held_nothing_waits() -> None:
    held = HeldWrite()
    token = HELD_WRITE.set(held)
    try:
        await asyncio.wait_for(flush_held_write(), 1)  # no write held: a later write goes ahead
        release_held_write()  # the head ended without one
        await asyncio.wait_for(held.stored(), 1)
    finally:
        HELD_WRITE.reset(token)
    assert not held.hold(Writes().write("too late"))  # past the release: the caller writes


async def test_a_failure_reaches_every_waiter() -> None:
    held = HeldWrite()
    held.hold(Writes(fail=True).write("message"))
    held.release()
    with pytest.raises(ConnectionError):
        await held.stored()
    with pytest.raises(ConnectionError):
        await held.flush()


async def test_a_cancelled_waiter_leaves_the_write_running() -> None:
    writes = Writes()
    held = HeldWrite()
    held.hold(writes.write("message"))
    held.release()
    waiter = asyncio.ensure_future(held.stored())
    await asyncio.sleep(0)
    waiter.cancel()
    await asyncio.wait_for(held.stored(), 1)
    assert writes.ran == ["message"]


async def test_a_failure_nobody_awaited_is_not_reported_as_unretrieved() -> None:
    reported: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _, context: reported.append(context))
    held = HeldWrite()
    held.hold(Writes(fail=True).write("message"))
    held.release()
    await asyncio.sleep(0.01)
    del held
    gc.collect()
    assert reported == []
