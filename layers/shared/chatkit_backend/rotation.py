"""Database credentials that follow Secrets Manager rotation without a restart.

A warm sandbox caches the secret and keeps its engine for life; after a rotation the next *new*
connection would log in with stale credentials. So the engine keeps no credentials in its URL:
a ``do_connect`` hook puts the secret's current user and password into every new connection,
and a failed connect re-reads the secret once (``force_fetch``) and retries only if it changed
(libpq's login errors are localised text without a SQLSTATE, so they are not classified).
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from .secrets import database_url_from_secret

logger = logging.getLogger(__name__)


def follow_secret_rotation(engine: AsyncEngine, secret_arn: str) -> None:
    """Log every new connection of ``engine`` in with the current credentials of ``secret_arn``."""
    event.listen(engine.sync_engine, "do_connect", SecretCredentials(secret_arn))


class SecretCredentials:
    """The ``do_connect`` hook: fresh credentials per connection, one re-read after a failure."""

    def __init__(self, secret_arn: str) -> None:
        self.secret_arn = secret_arn

    def __call__(
        self, dialect: Any, _record: Any, cargs: tuple[Any, ...], cparams: dict[str, Any]
    ) -> Any:
        cached = login(self.secret_arn)
        cparams.update(cached)
        try:
            return dialect.connect(*cargs, **cparams)
        except dialect.loaded_dbapi.OperationalError:
            fresh = login(self.secret_arn, force_fetch=True)
            if fresh == cached:
                raise
            logger.warning("database login failed with cached credentials; the secret changed")
            cparams.update(fresh)
            return dialect.connect(*cargs, **cparams)


def login(secret_arn: str, *, force_fetch: bool = False) -> dict[str, str | None]:
    """The ``user`` / ``password`` connection arguments from the secret."""
    url = make_url(database_url_from_secret(secret_arn, force_fetch=force_fetch))
    password = url.password
    return {"user": url.username, "password": None if password is None else str(password)}
