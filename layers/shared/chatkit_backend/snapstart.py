"""What every function does at the Lambda SnapStart boundary, whatever calls it.

SnapStart runs the init phase once per published version, snapshots the memory of the sandbox,
and starts every later sandbox of that version from a copy. So anything that lives in memory at
snapshot time is shared by every restored sandbox, possibly hours later:

* open sockets (pooled database connections, keep-alive HTTP connections) point at peers that
  forgot them long ago: :func:`release_before_snapshot` closes the pool, and the engine opens
  fresh connections on first use after the restore;
* cached secrets and signing keys may have rotated: :func:`refresh_after_restore` drops the
  Powertools cache (and its boto3 clients), marks the JWKS stale and re-reads an HS256 secret
  that comes from Secrets Manager;
* work deferred to first use is done before the snapshot instead:
  :func:`chatkit_backend.init_phase.complete_models` builds the pydantic models whose schema
  was deferred;
* pseudo-random state would repeat in every sandbox: ``random`` is reseeded from the OS.
  Identifiers are safe: :mod:`.ids` draws from ``secrets`` (the OS generator) on every call, and
  ``uuid.uuid4`` does too. ``PYTHONHASHSEED`` is fixed at process start and cannot be redrawn:
  string hashes stay identical across restored sandboxes (hash-flooding hardening is weaker, not
  correctness).

The chat function reaches these through its Web Adapter routes (``chat_app.snapstart``), the
conversations function through the runtime's ``snapshot_restore_py`` hooks.
"""

from __future__ import annotations

import random

from . import secrets
from .auth import Authenticator, JwtAuthenticator
from .db import Database
from .settings import Settings


async def release_before_snapshot(database: Database) -> None:
    """Close every pooled connection; the next checkout connects anew (after the restore)."""
    await database.dispose()


def refresh_after_restore(
    settings: Settings, authenticator: Authenticator, database: Database | None = None
) -> None:
    """Reseed ``random``, drop cached secrets, let JWKS and the JWT secret refresh, and have
    any connection pooled before the snapshot checked before its next use."""
    if database is not None:
        database.suspect_pooled()
    random.seed()
    secrets.clear_cache()
    if isinstance(authenticator, JwtAuthenticator):
        authenticator.refresh_after_restore(settings)
