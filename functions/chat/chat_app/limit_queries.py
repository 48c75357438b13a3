"""The SQL of the per-user turn limits: one statement admits a turn, one ends it, one explains.

Written once, with the few spellings that differ between PostgreSQL and SQLite filled in per
dialect. Everything is one row of ``user_limits`` per user, so the row lock of the upsert
serialises a user's concurrent admissions on every process and sandbox; other users' rows are
never touched.

:data:`ADMIT` is an ``INSERT ... ON CONFLICT (user_id) DO UPDATE ... WHERE <allowed> RETURNING``
that, in one round trip, refills the turn bucket for the time elapsed, drops expired leases
(a crashed sandbox's turn), starts the day's token sum over on a new UTC day, takes one token of
the bucket and adds this turn's lease, but only when every limit allows it: a refused turn
changes nothing and returns no row. A limit of 0 is off. :data:`FINISH` drops the lease and adds
the turn's tokens. Times are seconds since the epoch; ``day`` is the UTC day number.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chatkit_backend.tables import USER_LIMITS, UTCDateTime
from sqlalchemy import TextClause, bindparam, select, text
from sqlalchemy.ext.asyncio import AsyncConnection


@dataclass(frozen=True)
class _Dialect:
    least: str
    number: str  # a lease expiry (JSON number) as a float
    each: str  # the JSON object's entries as rows (key, value)
    pruned: str  # the old row's leases without the expired ones
    add_lease: str  # {pruned} with :lease -> :expires added
    drop_lease: str


POSTGRESQL = _Dialect(
    least="LEAST",
    number="(e.value)::float8",
    each="jsonb_each(l.leases) AS e",
    pruned="(SELECT COALESCE(jsonb_object_agg(e.key, e.value), '{{}}'::jsonb) "
    "FROM jsonb_each(l.leases) AS e WHERE (e.value)::float8 > :now)",
    add_lease="{pruned} || jsonb_build_object(CAST(:lease AS text), CAST(:expires AS float8))",
    drop_lease="leases - CAST(:lease AS text)",
)
SQLITE = _Dialect(
    least="MIN",
    number="e.value",
    each="json_each(l.leases) AS e",
    pruned="(SELECT json_group_object(e.key, e.value) "
    "FROM json_each(l.leases) AS e WHERE e.value > :now)",
    add_lease="json_set({pruned}, '$.\"' || :lease || '\"', :expires)",
    drop_lease="json_remove(leases, '$.\"' || :lease || '\"')",
)

_ADMIT = """
INSERT INTO user_limits AS l
    (user_id, turn_allowance, allowance_at, leases, usage_day, tokens_today, updated_at)
VALUES (:user_id, :fresh_allowance, :now, {fresh_leases}, :day, 0, :stamp)
ON CONFLICT (user_id) DO UPDATE SET
    turn_allowance = CASE WHEN {rate} = 0 THEN 0 ELSE {allowance} - 1 END,
    allowance_at = :now,
    leases = {leases},
    tokens_today = {tokens_today},
    usage_day = :day,
    updated_at = :stamp
WHERE ({rate} = 0 OR {allowance} >= 1)
    AND ({cap} = 0 OR {running} < {cap})
    AND ({budget} = 0 OR {tokens_today} < {budget})
RETURNING tokens_today, turn_allowance,
    COALESCE(turns_per_minute, :rate) AS turns_per_minute,
    COALESCE(concurrent_turns, :cap) AS concurrent_turns,
    COALESCE(tokens_per_day, :budget) AS tokens_per_day
"""

_FINISH = """
UPDATE user_limits SET
    leases = {drop_lease},
    tokens_today = CASE WHEN usage_day = :day THEN tokens_today ELSE 0 END + :tokens,
    usage_day = :day,
    updated_at = :stamp
WHERE user_id = :user_id
RETURNING tokens_today, COALESCE(tokens_per_day, :budget) AS tokens_per_day
"""


def _admit(dialect: _Dialect) -> TextClause:
    rate = "COALESCE(l.turns_per_minute, :rate)"
    fresh_leases = (
        "jsonb_build_object(CAST(:lease AS text), CAST(:expires AS float8))"
        if dialect is POSTGRESQL
        else "json_object(:lease, :expires)"
    )
    return _stamped(
        _ADMIT.format(
            rate=rate,
            cap="COALESCE(l.concurrent_turns, :cap)",
            budget="COALESCE(l.tokens_per_day, :budget)",
            allowance=f"{dialect.least}({rate}, l.turn_allowance "
            f"+ (:now - l.allowance_at) * {rate} / 60.0)",
            # Constant fragments of this module only; every value is a bound parameter.
            running=f"(SELECT count(*) FROM {dialect.each} WHERE {dialect.number} > :now)",  # noqa: S608
            leases=dialect.add_lease.format(pruned=dialect.pruned.format()),
            tokens_today="(CASE WHEN l.usage_day = :day THEN l.tokens_today ELSE 0 END)",
            fresh_leases=fresh_leases,
        )
    )


def _stamped(sql: str) -> TextClause:
    """The statement with ``:stamp`` bound as the tables' UTC timestamp type."""
    return text(sql).bindparams(bindparam("stamp", type_=UTCDateTime()))


ADMIT: dict[str, TextClause] = {"postgresql": _admit(POSTGRESQL), "sqlite": _admit(SQLITE)}
FINISH: dict[str, TextClause] = {
    name: _stamped(_FINISH.format(drop_lease=dialect.drop_lease))
    for name, dialect in (("postgresql", POSTGRESQL), ("sqlite", SQLITE))
}


async def admit(connection: AsyncConnection, dialect: str, **params: Any) -> dict[str, Any] | None:
    """Run :data:`ADMIT`: the user's row after admitting the turn, or None when refused."""
    row = (await connection.execute(ADMIT[dialect], params)).mappings().first()
    return dict(row) if row is not None else None


async def finish(connection: AsyncConnection, dialect: str, **params: Any) -> dict[str, Any] | None:
    """Run :data:`FINISH` (lease dropped, tokens added): the day's tokens and budget after it."""
    row = (await connection.execute(FINISH[dialect], params)).mappings().first()
    return dict(row) if row is not None else None


async def limits_row(connection: AsyncConnection, user_id: str) -> dict[str, Any] | None:
    """The user's row as it is (to explain a refusal), or None."""
    row = (
        (await connection.execute(select(USER_LIMITS).where(USER_LIMITS.c.user_id == user_id)))
        .mappings()
        .first()
    )
    return dict(row) if row is not None else None
