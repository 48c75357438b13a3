"""Full-entropy identifiers.

The ChatKit SDK's defaults carry 32 random bits (``thr_`` + 8 hex); with per-user namespaces a
collision is not a security hole here, but it would still make an upsert overwrite an unrelated
row of the same user. 128 bits of ``secrets`` randomness make that impossible in practice.
"""

from __future__ import annotations

import secrets

ID_PREFIXES: dict[str, str] = {
    "thread": "thr",
    "message": "msg",
    "tool_call": "tc",
    "workflow": "wf",
    "task": "tsk",
    "attachment": "atc",
    "sdk_hidden_context": "shcx",
}


def new_id(kind: str) -> str:
    """A new id such as ``thr_3f2a...`` (prefix + 32 hex digits = 128 random bits)."""
    prefix = ID_PREFIXES.get(kind, kind)
    return f"{prefix}_{secrets.token_hex(16)}"
