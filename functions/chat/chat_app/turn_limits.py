"""Per-user fair use of the model: turns per minute, turns at once, tokens per UTC day.

The state lives in the database (``user_limits``, :mod:`chat_app.limit_queries`), never in
process memory: every Lambda sandbox and every local process sees the same limits. A turn is
admitted by one statement, run as a task (:meth:`TurnLimits.start`) while the turn reads its
thread; nothing of the turn is stored and the model is not called before it passes (the
store's :data:`~chatkit_backend.store.ADMISSION` gate). A refusal is :class:`TooManyTurns`
(429 with ``Retry-After``), explained by a second read. The admitted turn
holds a :class:`Lease` that :meth:`TurnLimits.finish` gives back however the turn ends, adding
the tokens the model reported; a lease left behind by a sandbox that died expires after twice
the turn timeout (:data:`LEASE_TIMEOUTS`). Each finished turn logs one usage line (user, tokens,
what is left) and a ``TurnTokens`` metric without a per-user dimension.
"""

from __future__ import annotations

import asyncio
import json
import math
import secrets
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from chatkit_backend.caller import Caller
from chatkit_backend.db import Database
from chatkit_backend.errors import TooManyRequests
from chatkit_backend.observability import get_logger, get_metrics
from chatkit_backend.settings import Settings

from .cancellation import shielded
from .limit_queries import admit, finish, limits_row

DAY_SECONDS = 86_400
LEASE_TIMEOUTS = 2
"""A lease expires after this many turn timeouts: a turn stops at its timeout, and the rest
leaves room for its closing writes before another sandbox may count the lease as gone."""
BUSY_RETRY_SECONDS = 5
"""Retry-After of a refusal for turns at once: a running turn usually ends well before its
lease would expire, so the client is told to look again soon rather than at the expiry."""

Clock = Callable[[], float]


class TooManyTurns(TooManyRequests):
    """A turn refused by a per-user limit: 429 with the seconds to wait in ``Retry-After``."""


@dataclass
class Lease:
    """One admitted turn of one user; ``tokens`` is filled from the model's reported usage."""

    user_id: str
    lease_id: str
    tokens: int = 0
    limits: dict[str, Any] = field(default_factory=dict)
    finished: bool = False
    admission: asyncio.Future[None] | None = field(default=None, repr=False)
    """The admitting statement's task (:meth:`TurnLimits.start`); raises a refusal."""


CURRENT_LEASE: ContextVar[Lease | None] = ContextVar("chat_turn_lease", default=None)
"""The lease of the turn the current task streams (set before the stream's task starts, so the
agent turn inside it can add its usage)."""


def add_usage(tokens: int) -> None:
    """Count ``tokens`` against the current turn's lease (nothing when limits are off)."""
    lease = CURRENT_LEASE.get()
    if lease is not None:
        lease.tokens += tokens


class TurnLimits:
    """Admit and finish turns under the settings' per-user limits (0 turns one off)."""

    def __init__(self, database: Database, settings: Settings, clock: Clock = time.time) -> None:
        self._database = database
        self._rate = settings.user_turns_per_minute
        self._cap = settings.user_concurrent_turns
        self._budget = settings.user_tokens_per_day
        self._lease_seconds = settings.agent_turn_timeout_seconds * LEASE_TIMEOUTS
        self._clock = clock

    @property
    def enabled(self) -> bool:
        """False when every limit is 0: turns then cost no statement at all."""
        return bool(self._rate or self._cap or self._budget)

    def start(self, caller: Caller) -> Lease | None:
        """A lease for a turn of ``caller`` whose admission (one statement) runs from now on as
        its :attr:`Lease.admission` task, which raises :class:`TooManyTurns` when refused."""
        if not self.enabled:
            return None
        lease = Lease(caller.user_id, secrets.token_hex(8))
        lease.admission = asyncio.ensure_future(self._admit(lease, self._clock()))
        return lease

    async def admit(self, caller: Caller) -> Lease | None:
        """Admit a turn of ``caller`` or raise :class:`TooManyTurns` (:meth:`start`, awaited)."""
        lease = self.start(caller)
        if lease is not None and lease.admission is not None:
            await lease.admission
        return lease

    async def _admit(self, lease: Lease, now: float) -> None:
        async with self._database.autocommit() as session:
            row = await admit(
                session,
                self._database.dialect,
                **self._params(lease.user_id, now),
                lease=lease.lease_id,
                expires=now + self._lease_seconds,
                fresh_allowance=float(max(self._rate - 1, 0)),
            )
        if row is None:
            raise await self._refusal(lease.user_id, now)
        lease.limits = row

    async def finish(self, lease: Lease | None) -> None:
        """Give the lease back and add the turn's tokens; shielded, and at most once. A lease
        whose admission failed or was refused holds nothing to give back."""
        if lease is None or lease.finished:
            return
        lease.finished = True
        await shielded(self._finish(lease))

    async def _finish(self, lease: Lease) -> None:
        admission = lease.admission
        if admission is not None:
            await asyncio.wait([admission])
            if admission.cancelled() or admission.exception() is not None:
                return
        async with self._database.autocommit() as session:
            row = await finish(
                session,
                self._database.dialect,
                **self._params(lease.user_id, self._clock()),
                lease=lease.lease_id,
                tokens=lease.tokens,
            )
        get_metrics().add_metric(name="TurnTokens", unit="Count", value=lease.tokens)
        budget = int(row["tokens_per_day"]) if row else self._budget
        used = int(row["tokens_today"]) if row else lease.tokens
        get_logger().info(
            "turn usage",
            extra={
                "usage_user": lease.user_id,
                "turn_tokens": lease.tokens,
                "tokens_today": used,
                "tokens_left_today": max(budget - used, 0) if budget else None,
                "turns_left_this_minute": _turns_left(lease.limits),
            },
        )

    def _params(self, user_id: str, now: float) -> dict[str, Any]:
        return {
            "user_id": user_id,
            "now": now,
            "day": int(now // DAY_SECONDS),
            "stamp": datetime.fromtimestamp(now, UTC),
            "rate": self._rate,
            "cap": self._cap,
            "budget": self._budget,
        }

    async def _refusal(self, user_id: str, now: float) -> TooManyTurns:
        """Which limit refused the turn, and when to try again (a read of the user's row)."""
        async with self._database.autocommit() as session:
            row = await limits_row(session, user_id)
        return refusal(row or {}, now, self._rate, self._cap, self._budget)


def refusal(row: dict[str, Any], now: float, rate: int, cap: int, budget: int) -> TooManyTurns:
    """The 429 for a refused turn, from the user's row as :data:`ADMIT` left it."""
    rate = _override(row, "turns_per_minute", rate)
    cap = _override(row, "concurrent_turns", cap)
    budget = _override(row, "tokens_per_day", budget)
    day = int(now // DAY_SECONDS)
    if budget and row.get("usage_day") == day and int(row.get("tokens_today", 0)) >= budget:
        wait = (day + 1) * DAY_SECONDS - now
        return TooManyTurns(
            "Daily usage limit reached: new turns are possible again from midnight UTC",
            _whole_seconds(wait),
        )
    leases = row.get("leases") or {}
    if isinstance(leases, str):  # SQLite's JSON text, read through a plain select
        leases = json.loads(leases)
    running = sorted(float(expiry) for expiry in leases.values() if float(expiry) > now)
    if cap and len(running) >= cap:
        wait = min(running[0] - now, BUSY_RETRY_SECONDS)
        return TooManyTurns(
            f"Too many turns at once (at most {cap}): wait for one to finish",
            max(_whole_seconds(wait), 1),
        )
    elapsed = now - float(row.get("allowance_at", now))
    allowance = min(float(rate), float(row.get("turn_allowance", 0)) + elapsed * rate / 60)
    wait = (1 - allowance) * 60 / rate if rate else 1
    return TooManyTurns(
        f"Too many turns (at most {rate} a minute): try again shortly", max(_whole_seconds(wait), 1)
    )


def _whole_seconds(wait: float) -> int:
    """Seconds to wait, rounded up, ignoring float noise (a wait of one second is one, not two)."""
    return math.ceil(round(wait, 6))


def _override(row: dict[str, Any], column: str, default: int) -> int:
    value = row.get(column)
    return int(value) if value is not None else default


def _turns_left(limits: dict[str, Any]) -> int | None:
    if not limits or not limits.get("turns_per_minute"):
        return None
    return max(math.floor(float(limits["turn_allowance"])), 0)
