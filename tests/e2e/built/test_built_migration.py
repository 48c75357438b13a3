"""The built migration handler answers CloudFormation's custom resource protocol.

A Create (answered through a local stand-in for the pre-signed response URL) migrates an empty
database and reports the revision; a plain ``{"action": "upgrade"}`` returns it; a Delete
answers SUCCESS and leaves the schema alone.
"""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from tests.support.built_artifacts import OpenSandbox
from tests.support.cloudformation import ResponseServer, response_server
from tests.support.databases import schema_revision, scratch_database

pytestmark = pytest.mark.built


def custom_resource_event(request_type: str, url: str) -> dict[str, Any]:
    return {
        "RequestType": request_type,
        "ResponseURL": url,
        "StackId": "arn:aws:cloudformation:us-east-1:000000000000:stack/artifact-check/1",
        "RequestId": secrets.token_hex(8),
        "ResourceType": "Custom::DatabaseMigration",
        "LogicalResourceId": "DatabaseMigration",
        "PhysicalResourceId": "chatkit-database-schema",
        "ResourceProperties": {"ServiceToken": "local", "FunctionVersion": "1"},
    }


def single_answer(server: ResponseServer, what: str) -> dict[str, Any]:
    """The one CloudFormation response the invoke sent (the handler answers before returning)."""
    received = server.pending()
    assert len(received) == 1, f"{what}: expected one CloudFormation response, got {received}"
    return received[0].body


def test_create_migrates_plain_upgrade_reports_delete_keeps(open_sandbox: OpenSandbox) -> None:
    with scratch_database("ckb_artifacts") as url, response_server() as server:
        box = open_sandbox(
            "MigrationFunction", DATABASE_URL=url, CUSTOM_RESOURCE_LOOPBACK_RESPONSES="true"
        )

        box.invoke(custom_resource_event("Create", server.url()))
        created = single_answer(server, "Create")
        revision = schema_revision(url)
        assert created["Status"] == "SUCCESS", created
        assert revision, "Create answered SUCCESS but the database has no schema"
        assert created.get("Data", {}).get("Revision") == revision, created

        assert box.invoke({"action": "upgrade"}) == {"action": "upgrade", "revision": revision}

        box.invoke(custom_resource_event("Delete", server.url()))
        deleted = single_answer(server, "Delete")
        assert deleted["Status"] == "SUCCESS", deleted
        assert schema_revision(url) == revision, "Delete changed the schema"
        print(f"migration: Create SUCCESS (revision {revision}), plain upgrade, Delete SUCCESS")
