"""The headers this backend sends to one remote MCP server: its own credentials, never the caller's.

Each ``MCP_SERVERS`` entry names how to authenticate (:mod:`chatkit_backend.remote_mcp`):

* ``none``: no header.
* ``header``: one static header from a Secrets Manager secret (read through the Powertools
  cache, so a rotation is picked up within minutes).
* ``client_credentials``: an OAuth token for this backend, requested for the server's audience
  (``resource``, RFC 8707, and/or ``audience``) and cached per process until shortly before it
  expires. The user is not named: the server sees the backend, not who asked.
* ``token_exchange`` (RFC 8693): the caller's token is the ``subject_token`` of a request to the
  token endpoint only, which answers with a short-lived token for the server's audience that
  names the user. Exchanged per turn (never cached across users). A caller without a token
  (the local dev user) cannot be named, so that server is skipped for the turn.

The token endpoint is authenticated with HTTP Basic (``client_secret_basic``). An answer that
hands back the caller's own token is refused: it would be passthrough by another route.
Failures raise :class:`McpAuthError` with a message that names the server, never a secret.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import httpx2
from chatkit_backend.caller import Caller
from chatkit_backend.remote_mcp import (
    ClientCredentialsAuth,
    HeaderAuth,
    NoAuth,
    RemoteMcpServer,
    TokenExchangeAuth,
    safe_url,
)
from chatkit_backend.secrets import get_secret_value

TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105
TOKEN_TIMEOUT_SECONDS = 10.0
EXPIRY_MARGIN_SECONDS = 60.0
"""A cached token is renewed this long before its ``expires_in`` runs out."""
DEFAULT_TOKEN_SECONDS = 300.0
"""Lifetime assumed when the token endpoint gives no ``expires_in``."""


class McpAuthError(RuntimeError):
    """This backend could not get its credentials for one remote MCP server."""


@dataclass(frozen=True, slots=True)
class _CachedToken:
    value: str
    expires_at: float


_client_tokens: dict[str, _CachedToken] = {}
"""Client-credentials tokens per server entry (its JSON): the backend's own, for every user.
Expiry is wall-clock time, which stays right across a SnapStart restore."""


def clear_token_cache() -> None:
    """Forget cached client-credentials tokens (SnapStart restore, tests)."""
    _client_tokens.clear()


async def server_headers(server: RemoteMcpServer, caller: Caller) -> dict[str, str]:
    """The HTTP headers of ``server`` for this turn (see the module docstring)."""
    match server.auth:
        case NoAuth():
            return {}
        case HeaderAuth(secret_arn=arn, header=header, scheme=scheme):
            value = (await asyncio.to_thread(get_secret_value, arn)).strip()
            if not value:
                raise McpAuthError(f"the header secret of MCP server {server.label} is empty")
            return {header: f"{scheme} {value}" if scheme else value}
        case ClientCredentialsAuth() as grant:
            return _bearer(await _client_credentials_token(server, grant))
        case TokenExchangeAuth() as grant:
            if not caller.bearer_token:
                raise McpAuthError(
                    f"MCP server {server.label} needs a token exchange and the caller has no token"
                )
            return _bearer(await _exchanged_token(server, grant, caller.bearer_token))
    raise McpAuthError(f"unknown auth of MCP server {server.label}")  # pragma: no cover


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _client_credentials_token(server: RemoteMcpServer, grant: ClientCredentialsAuth) -> str:
    key = server.model_dump_json()
    cached = _client_tokens.get(key)
    if cached is not None and cached.expires_at - EXPIRY_MARGIN_SECONDS > time.time():
        return cached.value
    value, lifetime = await _request_token(
        server, grant, {"grant_type": "client_credentials"}, forbidden=None
    )
    _client_tokens[key] = _CachedToken(value, time.time() + lifetime)
    return value


async def _exchanged_token(server: RemoteMcpServer, grant: TokenExchangeAuth, subject: str) -> str:
    form = {
        "grant_type": TOKEN_EXCHANGE_GRANT,
        "subject_token": subject,
        "subject_token_type": ACCESS_TOKEN_TYPE,
        "requested_token_type": ACCESS_TOKEN_TYPE,
    }
    value, _lifetime = await _request_token(server, grant, form, forbidden=subject)
    return value


async def _request_token(
    server: RemoteMcpServer,
    grant: ClientCredentialsAuth | TokenExchangeAuth,
    form: dict[str, str],
    *,
    forbidden: str | None,
) -> tuple[str, float]:
    """POST the grant to the token endpoint; the access token and its lifetime in seconds."""
    secret = (await asyncio.to_thread(get_secret_value, grant.client_secret_arn)).strip()
    body = {**form, **_target(grant)}
    where = f"token endpoint {safe_url(grant.token_url)} of MCP server {server.label}"
    try:
        async with httpx2.AsyncClient(timeout=TOKEN_TIMEOUT_SECONDS) as client:
            reply = await client.post(
                grant.token_url,
                data=body,
                auth=httpx2.BasicAuth(grant.client_id, secret),
                headers={"Accept": "application/json"},
            )
    except httpx2.HTTPError as exc:
        raise McpAuthError(f"{where} unreachable: {type(exc).__name__}") from None
    if reply.status_code != 200:
        raise McpAuthError(f"{where} answered {reply.status_code}")
    try:
        answer: Any = reply.json()
    except ValueError:
        raise McpAuthError(f"{where} answered something that is not JSON") from None
    token = answer.get("access_token") if isinstance(answer, dict) else None
    if not isinstance(token, str) or not token:
        raise McpAuthError(f"{where} answered without an access_token")
    if forbidden is not None and token == forbidden:
        raise McpAuthError(f"{where} handed back the caller's own token: refused")
    expires_in = answer.get("expires_in")
    lifetime = float(expires_in) if isinstance(expires_in, int | float) else DEFAULT_TOKEN_SECONDS
    return token, max(lifetime, 0.0)


def _target(grant: ClientCredentialsAuth | TokenExchangeAuth) -> dict[str, str]:
    """The audience parameters: ``resource`` (RFC 8707), ``audience`` and ``scope`` when set."""
    fields = {"resource": grant.resource, "audience": grant.audience, "scope": grant.scope}
    return {name: value for name, value in fields.items() if value is not None}
