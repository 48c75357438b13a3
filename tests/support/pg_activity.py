"""Count a client's sessions on the PostgreSQL server (``pg_stat_activity``), from outside it.

Tests that check connections are closed (before a SnapStart snapshot) tag the app's engine with an
``application_name`` of their own, then ask the server, not the pool, how many sessions carry it.
"""

from __future__ import annotations

import secrets

from chatkit_backend.db import to_sync_url
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool


def tagged_url(url: str, prefix: str = "ckb_snap") -> tuple[str, str]:
    """``url`` with a fresh ``application_name``; returns (url, name)."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    tagged = make_url(url).update_query_dict({"application_name": name})
    return tagged.render_as_string(hide_password=False), name


def sessions_named(url: str, application_name: str) -> int:
    """How many server sessions carry ``application_name`` (this query's own is not counted)."""
    own = make_url(url).difference_update_query(["application_name"])
    engine = create_engine(to_sync_url(own), poolclass=NullPool)
    try:
        with engine.connect() as connection:
            count = connection.execute(
                text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :name"),
                {"name": application_name},
            ).scalar_one()
    finally:
        engine.dispose()
    return int(count)
