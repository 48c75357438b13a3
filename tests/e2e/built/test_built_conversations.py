"""The built conversations handler serves every ``events/conversations/*.json`` event.

One warm sandbox (like one Lambda sandbox) gets each event file with a minted HS256 token in
place of ``REPLACE_WITH_JWT`` and real ids and cursors in place of the other placeholders, and
must answer each with its documented status.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.built_artifacts import OpenSandbox
from tests.support.paths import REPO_ROOT
from tests.support.tokens import TEST_JWT_SECRET, mint_hs256

pytestmark = pytest.mark.built

EVENTS_DIR = REPO_ROOT / "events" / "conversations"
USER_ID = "artifact-check-user"
CRUD_ORDER = (
    ("health", 200),
    ("create", 201),
    ("list", 200),
    ("list-cursor", 200),
    ("recent", 200),
    ("get", 200),
    ("messages", 200),
    ("rename", 200),
    ("delete", 200),
    ("export-account", 200),
    ("erase-account", 200),
)
"""Every event file, in an order where each one's placeholders can be filled, and its status."""
FIRST_PAGE = 20
"""``limit`` in ``list.json``: that many conversations make a full page, so a cursor follows."""


def load_event(name: str, substitutions: dict[str, str]) -> dict[str, Any]:
    text = (EVENTS_DIR / f"{name}.json").read_text()
    for placeholder, value in substitutions.items():
        text = text.replace(placeholder, value)
    assert "REPLACE_WITH_" not in text, f"{name}.json has a placeholder this check lacks"
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def test_every_event_file_has_an_expectation() -> None:
    names = {path.stem for path in EVENTS_DIR.glob("*.json")}
    assert names - {name for name, _ in CRUD_ORDER} == set()


def test_every_event_is_answered_with_its_status(
    open_sandbox: OpenSandbox, database_url: str
) -> None:
    box = open_sandbox(
        "ConversationsFunction", DATABASE_URL=database_url, JWT_SECRET=TEST_JWT_SECRET
    )
    subs = {"REPLACE_WITH_JWT": mint_hs256(USER_ID)}
    for _ in range(FIRST_PAGE):
        box.invoke(load_event("create", subs))
    names = {path.stem for path in EVENTS_DIR.glob("*.json")}
    results = []
    for name, expected in CRUD_ORDER:
        if name not in names:
            continue
        response = box.invoke(load_event(name, subs))
        status = response.get("statusCode")
        body = json.loads(response.get("body") or "null")
        assert status == expected, f"{name}.json: status {status}, expected {expected}: {body}"
        if name == "create":
            subs["REPLACE_WITH_CONVERSATION_ID"] = body["id"]
        if name == "list":
            subs["REPLACE_WITH_CURSOR"] = body["next_cursor"]
        results.append(f"{name} {status}")
    print("conversations: " + ", ".join(results))
