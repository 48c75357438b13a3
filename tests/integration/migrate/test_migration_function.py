"""The migration function end to end: its Lambda entry point, a real HTTP server standing in for
CloudFormation's response URL, Secrets Manager (moto) holding RDS-style credentials, PostgreSQL.

The secret carries a password full of URL-special characters: the local server trusts every
connection, so the password is never checked, but it must never appear in an answer either.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import custom_resource
import migration_handler
import migration_runner
import pytest
from chatkit_backend import secrets
from chatkit_backend.settings import get_settings
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from tests.support.aws import REGION, fake_aws
from tests.support.cloudformation import ReceivedResponse, ResponseServer, response_server
from tests.support.databases import schema_revision, scratch_database, table_names
from tests.support.migration_scripts import (
    ADD_TABLE,
    FAILS_HALFWAY,
    PROJECT_HEAD,
    PROJECT_MIGRATIONS,
    migrations_with,
)

PASSWORD = "n0t-Shown/@:?#%"
LOGICAL_ID = "DatabaseMigration"


@dataclass
class FakeContext:
    """The part of the Lambda context the handler reads."""

    remaining_ms: int = 300_000
    function_version: str = "$LATEST"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@dataclass
class Stack:
    """One scratch database behind a Secrets Manager secret, plus the response server."""

    url: str
    secret_arn: str
    secretsmanager: Any
    server: ResponseServer

    def event(self, request_type: str, physical_id: str | None = None) -> dict[str, Any]:
        event: dict[str, Any] = {
            "RequestType": request_type,
            "ServiceToken": f"arn:aws:lambda:{REGION}:123456789012:function:migrate",
            "ResponseURL": self.server.url(),
            "StackId": f"arn:aws:cloudformation:{REGION}:123456789012:stack/chatkit/{uuid.uuid4()}",
            "RequestId": str(uuid.uuid4()),
            "LogicalResourceId": LOGICAL_ID,
            "ResourceType": "Custom::DatabaseMigration",
            "ResourceProperties": {"MigrationsVersion": "7"},
        }
        if physical_id is not None:
            event["PhysicalResourceId"] = physical_id
        return event

    def invoke(self, event: dict[str, Any], context: FakeContext | None = None) -> ReceivedResponse:
        """Run the handler; return the one answer it sent (and check it sent only one)."""
        assert migration_handler.handler(event, context or FakeContext()) is None
        response = self.server.next_response(timeout=5)
        assert self.server.pending() == []
        assert response.body["RequestId"] == event["RequestId"]
        assert response.body["StackId"] == event["StackId"]
        assert response.body["LogicalResourceId"] == LOGICAL_ID
        assert PASSWORD not in json.dumps(response.body)
        return response

    def set_secret(self, **credentials: Any) -> None:
        self.secretsmanager.put_secret_value(
            SecretId=self.secret_arn, SecretString=json.dumps(credentials)
        )

    def revision(self) -> str | None:
        return schema_revision(self.url)

    def tables(self) -> set[str]:
        return table_names(self.url)


def _credentials(url: str, **overrides: Any) -> dict[str, Any]:
    parsed = make_url(url)
    credentials = {
        "engine": "postgres",
        "host": parsed.host,
        "port": parsed.port or 5432,
        "username": parsed.username,
        "password": PASSWORD,
        "dbname": parsed.database,
    }
    credentials.update(overrides)
    return credentials


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    with scratch_database("ckb_fn") as url, fake_aws(monkeypatch), response_server() as server:
        client = boto3.client("secretsmanager", region_name=REGION)
        arn = client.create_secret(Name="chatkit/db", SecretString=json.dumps(_credentials(url)))[
            "ARN"
        ]
        monkeypatch.setenv("DATABASE_SECRET_ARN", arn)
        monkeypatch.delenv("DATABASE_URL", raising=False)
        monkeypatch.delenv("MIGRATIONS_DIR", raising=False)
        get_settings.cache_clear()
        try:
            yield Stack(url=url, secret_arn=arn, secretsmanager=client, server=server)
        finally:
            get_settings.cache_clear()


def _use_migrations(monkeypatch: pytest.MonkeyPatch, directory: Path) -> None:
    """Play a deploy whose function carries ``directory`` as its migrations."""
    monkeypatch.setenv("MIGRATIONS_DIR", str(directory))


def test_the_bundled_migrations_are_the_projects() -> None:
    """The function folder reaches the top-level migrations (a link that sam build copies)."""
    bundled = migration_handler.BUNDLED_MIGRATIONS
    assert (bundled / "alembic.ini").is_file()
    assert bundled.resolve() == PROJECT_MIGRATIONS.resolve()


def test_create_migrates_to_head_and_answers_success(stack: Stack) -> None:
    response = stack.invoke(stack.event("Create"))
    assert response.method == "PUT"
    assert response.path == "/cfn-response"
    assert response.headers.get("content-type", "") == ""  # what the pre-signed URL was signed for
    assert response.body["Status"] == "SUCCESS"
    assert response.body["Data"] == {"Revision": PROJECT_HEAD}
    assert response.body["PhysicalResourceId"] == custom_resource.PHYSICAL_RESOURCE_ID
    assert stack.revision() == PROJECT_HEAD
    assert {"threads", "thread_items", "attachments", "tasks"} <= stack.tables()


def test_update_applies_a_new_revision(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    created = stack.invoke(stack.event("Create"))
    physical_id = created.body["PhysicalResourceId"]
    _use_migrations(monkeypatch, migrations_with(tmp_path / "migrations", ADD_TABLE))

    response = stack.invoke(stack.event("Update", physical_id))

    assert response.body["Status"] == "SUCCESS"
    assert response.body["Data"] == {"Revision": "0101"}
    assert response.body["PhysicalResourceId"] == physical_id  # an update, not a replacement
    assert stack.revision() == "0101"
    assert "release_notes" in stack.tables()


def test_bad_revision_answers_failed_and_leaves_the_schema(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    physical_id = stack.invoke(stack.event("Create")).body["PhysicalResourceId"]
    tables_before = stack.tables()
    _use_migrations(monkeypatch, migrations_with(tmp_path / "migrations", FAILS_HALFWAY))

    response = stack.invoke(stack.event("Update", physical_id))

    assert response.body["Status"] == "FAILED"
    assert response.body["PhysicalResourceId"] == physical_id
    assert "migration failed" in response.body["Reason"]
    assert 'relation "no_such_table" does not exist' in response.body["Reason"]
    assert response.body["Data"] == {}
    # The revision's first statement ran, then the transaction rolled back as a whole.
    assert stack.tables() == tables_before
    assert stack.revision() == PROJECT_HEAD


def test_delete_answers_success_and_keeps_the_schema(stack: Stack) -> None:
    physical_id = stack.invoke(stack.event("Create")).body["PhysicalResourceId"]
    tables_before = stack.tables()

    response = stack.invoke(stack.event("Delete", physical_id))

    assert response.body["Status"] == "SUCCESS"
    assert response.body["PhysicalResourceId"] == physical_id
    assert stack.tables() == tables_before
    assert stack.revision() == PROJECT_HEAD


def test_delete_never_reads_the_database(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """A rollback of a failed Create sends Delete even when nothing could ever connect."""
    monkeypatch.setenv("DATABASE_SECRET_ARN", "arn:aws:secretsmanager:us-east-1:1:secret:nope")
    get_settings.cache_clear()
    response = stack.invoke(stack.event("Delete", "whatever-create-answered"))
    assert response.body["Status"] == "SUCCESS"
    assert response.body["PhysicalResourceId"] == "whatever-create-answered"
    assert stack.revision() is None


@pytest.mark.parametrize(
    ("secret_value", "reason"),
    [
        (f"password={PASSWORD}", "secret chatkit/db-"),  # not JSON; named, not shown
        (json.dumps({"password": PASSWORD, "host": "127.0.0.1"}), "lacks username"),
    ],
)
def test_unusable_secret_answers_failed_without_the_secret(
    stack: Stack, secret_value: str, reason: str
) -> None:
    stack.secretsmanager.put_secret_value(SecretId=stack.secret_arn, SecretString=secret_value)
    response = stack.invoke(stack.event("Create"))
    assert response.body["Status"] == "FAILED"
    assert reason in response.body["Reason"]
    assert stack.revision() is None


def test_missing_secret_answers_failed(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "DATABASE_SECRET_ARN", f"arn:aws:secretsmanager:{REGION}:123456789012:secret:gone-Ab12Cd"
    )
    get_settings.cache_clear()
    response = stack.invoke(stack.event("Create"))
    assert response.body["Status"] == "FAILED"
    assert "cannot read secret gone-Ab12Cd" in response.body["Reason"]


def test_database_url_serves_without_a_secret(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATABASE_SECRET_ARN")
    monkeypatch.setenv("DATABASE_URL", stack.url)
    get_settings.cache_clear()
    assert stack.invoke(stack.event("Create")).body["Data"] == {"Revision": PROJECT_HEAD}


def test_no_database_configured_answers_failed(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No silent fallback to an embedded database inside the Lambda sandbox."""
    monkeypatch.delenv("DATABASE_SECRET_ARN")
    get_settings.cache_clear()
    response = stack.invoke(stack.event("Create"))
    assert response.body["Status"] == "FAILED"
    assert "set DATABASE_SECRET_ARN" in response.body["Reason"]


def test_unreachable_database_answers_failed_naming_it(stack: Stack) -> None:
    stack.set_secret(**_credentials(stack.url, dbname="no_such_database_here"))
    response = stack.invoke(stack.event("Create"))
    assert response.body["Status"] == "FAILED"
    assert "cannot connect to the database" in response.body["Reason"]
    assert "no_such_database_here" in response.body["Reason"]


def test_rotated_credentials_are_fetched_again(stack: Stack) -> None:
    """Cached credentials that stopped working (rotation) are re-read once, then it works."""
    stack.set_secret(**_credentials(stack.url, username="rotated_away"))
    secrets.database_url_from_secret(stack.secret_arn)  # the sandbox cached the old credentials
    stack.set_secret(**_credentials(stack.url))

    response = stack.invoke(stack.event("Create"))

    assert response.body["Status"] == "SUCCESS"
    assert stack.revision() == PROJECT_HEAD


def test_answers_failed_before_the_lambda_timeout(stack: Stack) -> None:
    """Stuck behind another deploy's lock, the job answers FAILED before Lambda would kill it."""
    context = FakeContext(remaining_ms=int(custom_resource.TIMEOUT_MARGIN_SECONDS * 1000) + 50)
    engine = create_engine(stack.url, poolclass=NullPool)
    event = stack.event("Create")
    outcome: list[object] = []
    try:
        with engine.connect() as holder:
            holder.execute(
                text("SELECT pg_advisory_lock(:k)"), {"k": migration_runner.ADVISORY_LOCK_KEY}
            )
            holder.commit()
            job = threading.Thread(
                target=lambda: outcome.append(migration_handler.handler(event, context))
            )
            job.start()
            response = stack.server.next_response(timeout=10)  # while the job still waits
            assert job.is_alive()
            assert stack.revision() is None
            holder.execute(
                text("SELECT pg_advisory_unlock(:k)"), {"k": migration_runner.ADVISORY_LOCK_KEY}
            )
            holder.commit()
        job.join(timeout=60)
    finally:
        engine.dispose()
    assert outcome == [None]
    assert response.body["Status"] == "FAILED"
    assert "timeout" in response.body["Reason"]
    assert stack.server.pending() == []  # the job's own late answer was not sent as well


def test_plain_invoke_returns_the_revision(stack: Stack) -> None:
    result = migration_handler.handler({"action": "upgrade"}, FakeContext())
    assert result == {"action": "upgrade", "revision": PROJECT_HEAD}
    assert stack.revision() == PROJECT_HEAD
    assert stack.server.pending() == []


def test_plain_invoke_refuses_other_events(stack: Stack) -> None:
    with pytest.raises(ValueError, match='"action": "upgrade"'):
        migration_handler.handler({"action": "downgrade"}, FakeContext())
    assert stack.revision() is None


def _versioned_update(stack: Stack, physical_id: str, new: str, old: str) -> dict[str, Any]:
    event = stack.event("Update", physical_id)
    event["ResourceProperties"] = {"FunctionVersion": new}
    event["OldResourceProperties"] = {"FunctionVersion": old}
    return event


def test_failed_update_then_rollback_shaped_update_leaves_the_stack_rollbackable(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Version 2 carries a failing revision; the rollback asks for version 1 while 2 still runs.

    Before the rule, the rollback re-ran the failing revision, answered FAILED, and the stack
    ended in UPDATE_ROLLBACK_FAILED.
    """
    physical_id = stack.invoke(stack.event("Create")).body["PhysicalResourceId"]
    _use_migrations(monkeypatch, migrations_with(tmp_path / "migrations", FAILS_HALFWAY))
    new_code = FakeContext(function_version="2")

    failed = stack.invoke(_versioned_update(stack, physical_id, "2", "1"), new_code)
    rollback = stack.invoke(_versioned_update(stack, physical_id, "1", "2"), new_code)

    assert failed.body["Status"] == "FAILED"
    assert rollback.body["Status"] == "SUCCESS"
    assert rollback.body["Data"] == {"Revision": PROJECT_HEAD}
    assert "not the running version 2" in rollback.body["Reason"]
    assert stack.revision() == PROJECT_HEAD


def test_rds_managed_secret_with_the_host_from_the_template(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An RDS-managed master secret (username, password only) plus DATABASE_HOST/PORT/NAME."""
    parsed = make_url(stack.url)
    stack.set_secret(username=parsed.username, password=PASSWORD)
    monkeypatch.setenv("DATABASE_HOST", str(parsed.host))
    monkeypatch.setenv("DATABASE_PORT", str(parsed.port or 5432))
    monkeypatch.setenv("DATABASE_NAME", str(parsed.database))
    get_settings.cache_clear()
    response = stack.invoke(stack.event("Create"))
    assert response.body["Status"] == "SUCCESS"
    assert stack.revision() == PROJECT_HEAD
