"""A chat turn publishes its operational metrics (CloudWatch EMF on stdout, once per request)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from chat_app.app import create_app
from chatkit_backend.auth import build_authenticator
from chatkit_backend.db import Database
from chatkit_backend.settings import Settings

from tests.support.tokens import TEST_JWT_SECRET, auth_header


def emf_documents(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if '"_aws"' in line]


async def test_turn_metrics_time_to_first_token_duration_tokens(
    pg_database: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(jwt_secret=TEST_JWT_SECRET)
    app = create_app(
        settings=settings, database=pg_database, authenticator=build_authenticator(settings)
    )
    transport = httpx.ASGITransport(app=app)
    capsys.readouterr()
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.post(
            "/chatkit", json={"message": "hello there"}, headers=auth_header("metrics-user")
        )
    assert response.status_code == 200
    assert response.text.rstrip().endswith("data: [DONE]")

    (document,) = emf_documents(capsys.readouterr().out)
    names = {m["Name"]: m.get("Unit") for m in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert names["TimeToFirstToken"] == "Milliseconds"
    assert names["TurnDuration"] == "Milliseconds"
    assert {"InputTokens", "OutputTokens", "ChatTurnCompleted"} <= names.keys()
    first_token, duration = document["TimeToFirstToken"], document["TurnDuration"]
    first_token = first_token[0] if isinstance(first_token, list) else first_token
    duration = duration[0] if isinstance(duration, list) else duration
    assert 0 < first_token <= duration
