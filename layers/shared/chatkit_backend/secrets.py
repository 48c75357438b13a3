"""Secrets from AWS Secrets Manager through Powertools ``parameters`` (cached per sandbox).

The cache lifetime is short enough to pick up a rotation within minutes; a caller that sees an
authentication failure can ask for ``force_fetch=True`` to refresh at once (rotation race). Values
are never logged: only the ARN's last component appears in error messages.
"""

from __future__ import annotations

import json
import sys
from typing import Any
from urllib.parse import quote

from .errors import ConfigurationError

SECRET_MAX_AGE_SECONDS = 300


def get_secret_value(arn: str, *, force_fetch: bool = False) -> str:
    """The secret string behind ``arn``."""
    from aws_lambda_powertools.utilities import parameters

    try:
        value = parameters.get_secret(arn, max_age=SECRET_MAX_AGE_SECONDS, force_fetch=force_fetch)
    except parameters.exceptions.GetParameterError as exc:
        raise ConfigurationError(f"cannot read secret {_short(arn)}") from exc
    if isinstance(value, bytes):
        return value.decode()
    return str(value)


def clear_cache() -> None:
    """Drop every cached secret and the Powertools providers with their boto3 clients.

    Called after a SnapStart restore: cached values and the client's keep-alive connections to
    Secrets Manager were frozen into the snapshot. Powertools is not imported just to clear it.
    """
    parameters = sys.modules.get("aws_lambda_powertools.utilities.parameters")
    if parameters is not None:
        parameters.clear_caches()


def get_json_secret(arn: str, *, force_fetch: bool = False) -> dict[str, Any]:
    """A JSON secret (such as the RDS credentials shape) as a dict."""
    raw = get_secret_value(arn, force_fetch=force_fetch)
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigurationError(f"secret {_short(arn)} is not JSON") from exc
    if not isinstance(parsed, dict):
        raise ConfigurationError(f"secret {_short(arn)} is not a JSON object")
    return parsed


def database_url_from_secret(arn: str, *, force_fetch: bool = False) -> str:
    """Build a ``postgresql+psycopg://`` URL from an RDS-style secret.

    Accepts the shape RDS and ``AWS::SecretsManager::SecretTargetAttachment`` write
    (``host``, ``port``, ``username``, ``password``, ``dbname``), or ``{"url": ...}``. An
    RDS-managed master secret holds only ``username`` and ``password``: the endpoint then comes
    from the settings ``DATABASE_HOST`` / ``DATABASE_PORT`` / ``DATABASE_NAME``, which also win
    over the secret's values (one secret, two endpoints: RDS Proxy for the app functions, the
    database itself for the migration job).
    """
    from .settings import get_settings

    settings = get_settings()
    secret = get_json_secret(arn, force_fetch=force_fetch)
    if "url" in secret:
        return str(secret["url"])
    host = settings.database_host or secret.get("host")
    missing = [key for key in ("username", "password") if key not in secret]
    if not host:
        missing.insert(0, "host")
    if missing:
        raise ConfigurationError(
            f"secret {_short(arn)} lacks {', '.join(missing)} (expected username, password and "
            "host; give the host as DATABASE_HOST with an RDS-managed secret)"
        )
    try:
        port = settings.database_port or int(secret.get("port", 5432))
    except (TypeError, ValueError):
        raise ConfigurationError(f"secret {_short(arn)} has a port that is not a number") from None
    user = quote(str(secret["username"]), safe="")
    password = quote(str(secret["password"]), safe="")
    name = settings.database_name or secret.get("dbname") or "postgres"
    dbname = quote(str(name), safe="")
    return f"postgresql+psycopg://{user}:{password}@{host}:{port}/{dbname}"


def _short(arn: str) -> str:
    return arn.rsplit(":", 1)[-1]
