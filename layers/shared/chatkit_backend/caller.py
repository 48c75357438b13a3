"""The per-request context every store and service call receives."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is asking. Built only from a verified token (or the dev-server user), never from a body.

    ``bearer_token`` is kept only as the ``subject_token`` of an RFC 8693 token exchange with a
    configured token endpoint (``chat_app.mcp_auth``); it is never sent to an MCP server, and is
    excluded from ``repr`` so it cannot leak through logs.
    """

    user_id: str
    bearer_token: str | None = field(default=None, repr=False)
    request_id: str | None = None
