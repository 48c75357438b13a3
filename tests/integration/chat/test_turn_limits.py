"""The per-user limit statements on PostgreSQL and SQLite, under an injected clock.

Each limit refuses exactly past its bound and recovers as it should: the bucket refills with
time, a lease is given back by ``finish`` or expires after the lease time, the day's tokens start
over at the UTC day boundary. Another user is never affected, and a refusal changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from chat_app.turn_limits import DAY_SECONDS, LEASE_TIMEOUTS, Lease, TooManyTurns, TurnLimits
from chatkit_backend.caller import Caller
from chatkit_backend.db import Database
from chatkit_backend.settings import Settings
from sqlalchemy import text

from tests.support.clock import FakeClock, into_a_utc_day

START = into_a_utc_day(3600)  # an hour into a UTC day


def limits(
    database: Database, clock: FakeClock, rate: int = 0, cap: int = 0, budget: int = 0
) -> TurnLimits:
    settings = Settings(
        user_turns_per_minute=rate,
        user_concurrent_turns=cap,
        user_tokens_per_day=budget,
        agent_turn_timeout_seconds=10,
    )
    return TurnLimits(database, settings, clock)


async def test_the_bucket_refuses_the_extra_turn_and_refills(
    any_database: Database, alice: Caller, bob: Caller
) -> None:
    clock = FakeClock(START)
    turns = limits(any_database, clock, rate=3)
    for _ in range(3):
        await turns.finish(await turns.admit(alice))
    with pytest.raises(TooManyTurns) as refused:
        await turns.admit(alice)
    assert refused.value.status_code == 429
    assert refused.value.retry_after == 20  # one turn every 20 seconds at 3 a minute
    assert "3 a minute" in refused.value.message
    await turns.finish(await turns.admit(bob))  # another user is not affected

    clock.now += 19
    with pytest.raises(TooManyTurns) as still:
        await turns.admit(alice)
    assert still.value.retry_after == 1
    clock.now += 1
    await turns.finish(await turns.admit(alice))
    with pytest.raises(TooManyTurns):
        await turns.admit(alice)
    clock.now += 3600  # refills to the bucket size, never past it
    for _ in range(3):
        await turns.finish(await turns.admit(alice))
    with pytest.raises(TooManyTurns):
        await turns.admit(alice)


async def test_leases_are_given_back_or_expire(
    any_database: Database, alice: Caller, bob: Caller
) -> None:
    clock = FakeClock(START)
    turns = limits(any_database, clock, cap=2)
    first = await turns.admit(alice)
    second = await turns.admit(alice)
    with pytest.raises(TooManyTurns) as refused:
        await turns.admit(alice)
    assert refused.value.retry_after == 5
    assert "at most 2" in refused.value.message
    bob_turn = await turns.admit(bob)

    await turns.finish(first)
    await turns.finish(first)  # at most once
    third = await turns.admit(alice)
    with pytest.raises(TooManyTurns):
        await turns.admit(alice)

    # second and third are never given back (their sandbox died): they expire.
    clock.now += 10 * LEASE_TIMEOUTS - 1
    with pytest.raises(TooManyTurns):
        await turns.admit(alice)
    clock.now += 2
    await turns.admit(alice)
    await turns.admit(alice)
    assert second is not None
    assert third is not None
    assert bob_turn is not None
    async with any_database.session() as session:
        leases = (
            await session.execute(
                text("SELECT leases FROM user_limits WHERE user_id = :u"), {"u": alice.user_id}
            )
        ).scalar_one()
    assert second.lease_id not in str(leases)  # pruned, not only ignored


async def test_the_day_budget_holds_until_the_next_utc_day(
    any_database: Database, alice: Caller, bob: Caller
) -> None:
    clock = FakeClock(START)
    turns = limits(any_database, clock, budget=1000)
    lease = await turns.admit(alice)
    assert isinstance(lease, Lease)
    lease.tokens = 600
    await turns.finish(lease)
    crossing = await turns.admit(alice)  # under the budget: admitted, and it crosses it
    assert crossing is not None
    crossing.tokens = 600
    await turns.finish(crossing)
    with pytest.raises(TooManyTurns) as refused:
        await turns.admit(alice)
    assert refused.value.retry_after == DAY_SECONDS - 3600
    assert "Daily" in refused.value.message
    await turns.finish(await turns.admit(bob))

    clock.now += DAY_SECONDS - 3600 - 1
    with pytest.raises(TooManyTurns):
        await turns.admit(alice)
    clock.now += 1  # midnight UTC
    await turns.finish(await turns.admit(alice))


async def test_a_user_override_raises_the_limit(
    any_database: Database, new_user: Callable[[], Caller]
) -> None:
    """The runbook's way to raise one user's limit (docs/limits.md) works on both dialects."""
    clock = FakeClock(START)
    carol = new_user()
    turns = limits(any_database, clock, cap=1)
    await turns.admit(carol)
    with pytest.raises(TooManyTurns):
        await turns.admit(carol)
    async with any_database.session() as session:
        await session.execute(
            text("UPDATE user_limits SET concurrent_turns = 3 WHERE user_id = :u"),
            {"u": carol.user_id},
        )
    await turns.admit(carol)
    await turns.admit(carol)
    with pytest.raises(TooManyTurns) as refused:
        await turns.admit(carol)
    assert "at most 3" in refused.value.message


async def test_limits_off_cost_no_statement(any_database: Database, alice: Caller) -> None:
    turns = limits(any_database, FakeClock(START))
    assert not turns.enabled
    assert await turns.admit(alice) is None
    async with any_database.session() as session:
        count = (
            await session.execute(
                text("SELECT count(*) FROM user_limits WHERE user_id = :u"), {"u": alice.user_id}
            )
        ).scalar_one()
    assert count == 0
