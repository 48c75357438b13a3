"""Configuration of the remote MCP servers: one entry per server, each with its own auth.

``MCP_SERVERS`` is a JSON list whose entries are a URL string (no credentials sent) or an object
``{"url", "allowed_tools", "auth"}``. ``auth`` says how this backend authenticates *itself* to
that server; the caller's bearer token is never one of the options (MCP security best
practices: no token passthrough). The user's identity reaches a remote server only inside a
token the authorization server minted for that server's audience (``token_exchange``), or not
at all. Every URL (server and token endpoint) must be ``https``, loopback aside, and carries no
credentials or query string: a bad entry is a settings error at start, not a warning per turn.

Only the configuration lives here (the settings validate it at start, in every function given
entries); fetching secrets and tokens is the chat function's job (:mod:`chat_app.mcp_auth`).
"""

from __future__ import annotations

from typing import Annotated, Literal, Self
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from .settings import is_loopback


def check_https_url(url: str) -> str:
    """``url`` if it is ``https`` (or ``http`` to loopback) with a host and no credentials."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(f"not an http(s) URL with a host: {safe_url(url)}")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ValueError(f"plain http is allowed to loopback hosts only: {safe_url(url)}")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"credentials in the URL are not allowed (use auth): {safe_url(url)}")
    if parts.query or parts.fragment:
        raise ValueError(f"a query string or fragment is not allowed: {safe_url(url)}")
    return url


def safe_url(url: str) -> str:
    """A URL for messages and logs: scheme, host, port and path; never credentials or query."""
    parts = urlsplit(url)
    port = f":{parts.port}" if _port(url) else ""
    return f"{parts.scheme}://{parts.hostname or '?'}{port}{parts.path}"


def _port(url: str) -> int | None:
    try:
        return urlsplit(url).port
    except ValueError:
        return None


HttpsUrl = Annotated[str, AfterValidator(check_https_url)]
SecretArn = Annotated[str, Field(pattern=r"^arn:aws[a-z-]*:secretsmanager:", min_length=20)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class NoAuth(_Strict):
    """Nothing is sent: a public server (or one that trusts the network)."""

    type: Literal["none"] = "none"


class HeaderAuth(_Strict):
    """One static header whose value is a Secrets Manager secret (an API key of this backend).

    ``scheme`` (for example ``Bearer``) is prepended with a space when set. The value is read
    through the Powertools cache, so a rotated secret is picked up within minutes.
    """

    type: Literal["header"]
    secret_arn: SecretArn
    header: str = Field(default="Authorization", pattern=r"^[A-Za-z0-9-]{1,64}$")
    scheme: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._-]{1,32}$")


class _OAuthGrant(_Strict):
    """What both OAuth grants share: the token endpoint, this backend's client, the audience.

    ``resource`` (RFC 8707) and ``audience`` name the MCP server the token is for; at least one
    is required so the minted token is bound to that server and useless anywhere else.
    """

    token_url: HttpsUrl
    client_id: str = Field(min_length=1, max_length=256)
    client_secret_arn: SecretArn
    resource: str | None = Field(default=None, min_length=1, max_length=2048)
    audience: str | None = Field(default=None, min_length=1, max_length=2048)
    scope: str | None = Field(default=None, min_length=1, max_length=1024)

    @model_validator(mode="after")
    def _bound_to_a_server(self) -> Self:
        if self.resource is None and self.audience is None:
            raise ValueError("give resource (RFC 8707) or audience: the token's target server")
        return self


class ClientCredentialsAuth(_OAuthGrant):
    """OAuth client credentials: a token for this backend itself (the user is not named)."""

    type: Literal["client_credentials"]


class TokenExchangeAuth(_OAuthGrant):
    """OAuth token exchange (RFC 8693): the caller's token goes to the token endpoint only,
    which answers with a short-lived token for the MCP server's audience that names the user."""

    type: Literal["token_exchange"]


McpAuth = Annotated[
    NoAuth | HeaderAuth | ClientCredentialsAuth | TokenExchangeAuth, Field(discriminator="type")
]


class RemoteMcpServer(_Strict):
    """One remote streamable-HTTP MCP server, its tool allow-list and how to authenticate.

    ``allowed_tools`` ``None`` (a plain URL entry) falls back to ``MCP_ALLOWED_TOOLS``; an empty
    list exposes nothing, and such a server is not connected at all.
    """

    url: HttpsUrl
    allowed_tools: list[Annotated[str, Field(min_length=1, max_length=128)]] | None = None
    auth: McpAuth = Field(default_factory=NoAuth)

    @property
    def label(self) -> str:
        """A log-safe name: host, port and path."""
        return safe_url(self.url).split("://", 1)[1]

    @property
    def secret_arns(self) -> list[str]:
        """The secrets this entry reads (the chat function's IAM policy must allow them)."""
        match self.auth:
            case HeaderAuth(secret_arn=arn):
                return [arn]
            case (
                ClientCredentialsAuth(client_secret_arn=arn)
                | TokenExchangeAuth(client_secret_arn=arn)
            ):
                return [arn]
        return []


SERVER_ENTRIES: TypeAdapter[list[RemoteMcpServer]] = TypeAdapter(list[RemoteMcpServer])
"""``MCP_SERVERS`` as the settings validate it (see ``Settings._server_entries``)."""


def parse_server_entry(entry: object) -> object:
    """A plain URL string becomes ``{"url": ...}``; objects pass through to validation."""
    return {"url": entry} if isinstance(entry, str) else entry
