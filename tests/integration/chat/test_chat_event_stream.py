"""The SSE producer/response pair: pre-stream errors, late errors, coalescing, hang-ups."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from chat_app.cancellation import CURRENT_HANG_UP
from chat_app.sse import (
    BURST_WRITES,
    COALESCE_SECONDS,
    DONE,
    READY,
    Chunks,
    EventStream,
    sse_json,
    sse_text,
)


def failure(exc: Exception) -> bytes:
    return f"failed: {exc}".encode()


async def test_error_before_the_first_chunk_is_raised_by_started() -> None:
    async def source() -> AsyncIterator[bytes]:
        raise LookupError("no such thread")
        yield b""  # pragma: no cover - makes this an async generator

    stream = EventStream(source(), failure)

    with pytest.raises(LookupError, match="no such thread"):
        await stream.started()


async def test_error_after_the_first_chunk_ends_the_stream_with_the_failure_chunk() -> None:
    async def source() -> Chunks:
        yield b"one"
        yield READY
        raise RuntimeError("late")

    stream = EventStream(source(), failure)
    await stream.started()

    body = b"".join([chunk async for chunk in stream.chunks()])

    assert body == b"onefailed: late"


async def test_chunks_ready_together_are_sent_as_one_write() -> None:
    release = asyncio.Event()

    async def source() -> Chunks:
        yield b"a"
        yield READY
        await release.wait()
        for letter in (b"b", b"c", b"d"):
            yield letter

    stream = EventStream(source(), failure)
    await stream.started()
    writes = stream.chunks()

    assert await anext(writes) == b"a"
    release.set()
    assert [chunk async for chunk in writes] == [b"bcd"]


async def paced_source(count: int, pause: float, produced: list[int] | None = None) -> Chunks:
    """``count`` numbered chunks ``pause`` seconds apart (0: a burst, one per loop turn); the
    numbers produced so far go to ``produced``."""
    yield READY
    for number in range(count):
        if produced is not None:
            produced.append(number)
        yield f"{number},".encode()
        await asyncio.sleep(pause)


async def writes_of(source: Chunks) -> list[bytes]:
    stream = EventStream(source, failure)
    await stream.started()
    return [chunk async for chunk in stream.chunks()]


async def test_a_burst_shares_writes_but_its_first_events_are_not_held() -> None:
    produced: list[int] = []
    stream = EventStream(paced_source(400, 0, produced), failure)
    await stream.started()
    writes = stream.chunks()

    first = await anext(writes)
    assert len(produced) < BURST_WRITES  # written while the burst has barely begun
    rest = [chunk async for chunk in writes]

    assert first + b"".join(rest) == b"".join(f"{n},".encode() for n in range(400))  # in order
    assert len(rest) < 400 / 4


async def test_a_paced_stream_is_written_event_by_event() -> None:
    writes = await writes_of(paced_source(20, 3 * COALESCE_SECONDS))

    assert writes == [f"{n},".encode() for n in range(20)]


async def test_nothing_before_ready_is_interrupted_and_errors_there_are_raised_by_started() -> None:
    stored: list[str] = []

    async def source() -> Chunks:
        yield b"thread created"
        await asyncio.sleep(0.01)  # the user message being stored
        stored.append("user message")
        raise LookupError("after the write, still before READY")
        yield READY  # pragma: no cover

    stream = EventStream(source(), failure)
    stream.hang_up.signal()  # the client went away at once

    with pytest.raises(LookupError):
        await stream.started()
    assert stored == ["user message"]


async def test_close_signals_a_hang_up_to_the_source_and_waits_for_its_cleanup() -> None:
    parked = asyncio.Event()
    cleanup: list[str] = []

    async def source() -> Chunks:
        yield b"first"
        yield READY
        hang_up = CURRENT_HANG_UP.get()
        assert hang_up is not None
        gone = asyncio.Event()
        hang_up.subscribe(gone.set)
        parked.set()
        await gone.wait()
        await asyncio.sleep(0)  # cleanup that awaits
        cleanup.append("saved partial answer")

    stream = EventStream(source(), failure)
    await stream.started()
    await parked.wait()

    await stream.close()

    assert cleanup == ["saved partial answer"]
    assert [chunk async for chunk in stream.chunks()] == [b"first"]


def test_framing() -> None:
    assert sse_json('{"a":1}') == b'data: {"a":1}\n\n'
    assert (
        sse_text("one\ntwo\r\nthree\rfour") == b"data: one\ndata: two\ndata: three\ndata: four\n\n"
    )
    assert sse_text("", event="error") == b"event: error\ndata: \n\n"
    assert DONE == b"data: [DONE]\n\n"
