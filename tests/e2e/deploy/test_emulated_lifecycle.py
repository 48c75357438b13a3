"""The packaged template's lifecycle on emulated AWS (moto server mode) with a real PostgreSQL.

create (the migration custom resource runs the real migration from the packaged zip and answers
CloudFormation) -> update with a new revision -> update with a failing revision, answered by the
rollback-shaped Update -> delete. And the first-deploy retry: a create that fails rolls back and
the same stack can be created again (the log groups do not block it), which the log groups'
previous shape did not allow. What moto cannot model is shimmed in tests/support/moto_gaps/.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from chatkit_backend.db import to_sync_url
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.pool import NullPool

from tests.support.databases import schema_revision, scratch_database, table_names
from tests.support.emulated_deploy import LOG_GROUPS, EmulatedAws
from tests.support.migration_scripts import ADD_TABLE, FAILS_HALFWAY, PROJECT_HEAD

pytestmark = pytest.mark.postgres_only


@pytest.fixture
def database() -> Iterator[str]:
    with scratch_database("ckb_deploy") as url:
        yield url


def _secret(aws: EmulatedAws, name: str, url: str, **overrides: Any) -> str:
    parsed = make_url(url)
    value = {
        "host": parsed.host,
        "port": parsed.port or 5432,
        "username": parsed.username,
        "password": "unused-with-trust-auth",
        "dbname": parsed.database,
        **overrides,
    }
    client = aws.client("secretsmanager")
    return str(client.create_secret(Name=name, SecretString=json.dumps(value))["ARN"])


def _parameters(secret_arn: str) -> dict[str, str]:
    return {
        "Stage": "dev",
        "AllowedOrigins": "http://localhost:5173",
        "DatabaseSecretArn": secret_arn,
        "ChatReservedConcurrency": "3",
        "ConversationsReservedConcurrency": "4",
        "SnapStart": "true",  # URLs on the `live` aliases
        "DatabaseSslMode": "disable",  # the local PostgreSQL has no TLS (allowed in dev only)
    }


def _log_groups(aws: EmulatedAws, stack: str) -> list[str]:
    groups = aws.client("logs").describe_log_groups()["logGroups"]
    return sorted(g["logGroupName"] for g in groups if stack in g["logGroupName"])


def _new_answers(aws: EmulatedAws, seen: int) -> list[tuple[str, str, str]]:
    return [(a.request_type, a.status, a.reason) for a in aws.cloud.answers[seen:]]


def test_create_update_failed_update_and_delete(aws: EmulatedAws, database: str) -> None:
    stack = "chatkit-lifecycle"
    parameters = _parameters(_secret(aws, "lifecycle/db", database))

    # --- create: the packaged migration function migrates the empty database to head ----------
    release_1 = aws.package(aws.template_variant("release-1"), parameters)
    assert aws.create_stack(stack, release_1, parameters) == "CREATE_COMPLETE", [
        (answer.status, answer.reason, run.stderr[-1500:])
        for answer, run in zip(aws.cloud.answers, aws.cloud.invocations, strict=False)
    ] or aws.cloud.invocations
    assert _new_answers(aws, 0) == [
        ("Create", "SUCCESS", f"database schema at revision {PROJECT_HEAD}")
    ]
    assert aws.outputs(stack)["SchemaRevision"] == PROJECT_HEAD
    assert schema_revision(database) == PROJECT_HEAD
    outputs = aws.outputs(stack)
    assert outputs["ChatFunctionUrl"].startswith("https://")
    assert outputs["ConversationsFunctionUrl"].startswith("https://")
    # what the template deployed: no Lambda retries of the migration, capped public functions
    lambda_ = aws.client("lambda")
    migration = aws.resource(stack, "MigrationFunction")
    retries = lambda_.get_function_event_invoke_config(FunctionName=migration)
    assert retries["MaximumRetryAttempts"] == 0
    chat = aws.resource(stack, "ChatFunction")
    assert lambda_.get_function_concurrency(FunctionName=chat)["ReservedConcurrentExecutions"] == 3
    # the attachments bucket exists, encrypted, named by the output, with its TLS-only policy
    # (moto's bucket model applies encryption and tags only: CORS, the lifecycle rule and the
    # public access block are pinned by the template tests, not emulated)
    bucket = aws.resource(stack, "AttachmentsBucket")
    assert outputs["AttachmentsBucketName"] == bucket
    s3 = aws.client("s3")
    encryption = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
    assert encryption["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    assert policy["Statement"][0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}

    # --- update: a release with a new revision publishes a new version and migrates ------------
    seen = len(aws.cloud.answers)
    release_2 = aws.package(aws.template_variant("release-2", revisions=(ADD_TABLE,)), parameters)
    assert aws.update_stack(stack, release_2, parameters) == "UPDATE_COMPLETE"
    assert _new_answers(aws, seen) == [("Update", "SUCCESS", "database schema at revision 0101")]
    assert aws.outputs(stack)["SchemaRevision"] == "0101"
    assert "release_notes" in table_names(database)
    version_2 = aws.cloud.invocations[-1].version

    # --- a failing revision: FAILED, then the rollback-shaped Update is answered SUCCESS -------
    seen = len(aws.cloud.answers)
    tables_before = table_names(database)
    release_3 = aws.package(
        aws.template_variant("release-3", revisions=(ADD_TABLE, FAILS_HALFWAY)), parameters
    )
    assert aws.update_stack(stack, release_3, parameters) == "UPDATE_ROLLBACK_COMPLETE"
    [failed, rollback] = _new_answers(aws, seen)
    assert failed[:2] == ("Update", "FAILED")
    assert 'relation "no_such_table" does not exist' in failed[2]
    assert rollback[:2] == ("Update", "SUCCESS")
    version_3 = aws.cloud.invocations[-1].version
    assert f"{version_2} is not the running version {version_3}" in rollback[2]
    assert aws.cloud.invocations[-2].version == version_3  # the alias still ran the new code
    assert schema_revision(database) == "0101"
    assert table_names(database) == tables_before

    # --- delete: answered, the schema and the logs stay ----------------------------------------
    seen = len(aws.cloud.answers)
    groups = _log_groups(aws, stack)
    assert len(groups) == len(LOG_GROUPS)
    assert aws.delete_stack(stack) == "DELETE_COMPLETE"
    assert _new_answers(aws, seen) == [
        ("Delete", "SUCCESS", "Delete leaves the database schema in place")
    ]
    assert schema_revision(database) == "0101"
    assert _log_groups(aws, stack) == groups  # RetainExceptOnCreate: kept after a good create


@pytest.mark.parametrize(
    ("legacy_log_groups", "retry_status"),
    [(False, "CREATE_COMPLETE"), (True, "already exists")],
    ids=["log-groups-owned-by-the-stack", "fixed-names-with-retain-block-the-retry"],
)
def test_a_failed_first_create_can_be_retried(
    aws: EmulatedAws, database: str, legacy_log_groups: bool, retry_status: str
) -> None:
    stack = f"chatkit-retry-{'legacy' if legacy_log_groups else 'now'}"
    broken = _secret(aws, f"{stack}/broken", database, dbname="no_such_database")
    template = aws.package(
        aws.template_variant(f"{stack}-template", legacy_log_groups=legacy_log_groups),
        _parameters(broken),
    )
    seen = len(aws.cloud.answers)
    assert aws.create_stack(stack, template, _parameters(broken)) == "ROLLBACK_COMPLETE"
    answers = _new_answers(aws, seen)
    assert answers[0][:2] == ("Create", "FAILED")
    assert "no_such_database" in answers[0][2]
    assert answers[1][:2] == ("Delete", "SUCCESS")  # the rollback deletes the custom resource
    assert schema_revision(database) is None
    aws.delete_stack(stack)  # what an operator does with a ROLLBACK_COMPLETE stack

    working = _secret(aws, f"{stack}/working", database)
    try:
        status = aws.create_stack(stack, template, _parameters(working))
    except Exception as exc:  # moto refuses the create outright
        status = str(exc)
    assert retry_status in status
    if status == "CREATE_COMPLETE":
        assert schema_revision(database) == PROJECT_HEAD


def test_the_deploy_creates_the_app_role_and_schedules_retention(
    aws: EmulatedAws, database: str
) -> None:
    """With the owner's secret for the migration job and the app role's for the functions (the
    database stack's pair), the deployed migration creates ``chatkit_app``, grants it data
    rights and lets it log in; connected as that role, DDL is refused. The retention function
    is deployed with its EventBridge schedule."""
    stack = "chatkit-least-privilege"
    owner = _secret(aws, "least/owner", database)
    app = _secret(aws, "least/app", database, username="chatkit_app")
    parameters = {
        **_parameters(app),
        "MigrationDatabaseSecretArn": owner,
        "RetentionDays": "90",
    }
    release = aws.package(aws.template_variant("least-privilege"), parameters)
    assert aws.create_stack(stack, release, parameters) == "CREATE_COMPLETE"
    assert schema_revision(database) == PROJECT_HEAD

    as_app = make_url(database).set(username="chatkit_app").render_as_string(hide_password=False)
    engine = create_engine(to_sync_url(as_app), poolclass=NullPool)
    try:
        with engine.connect() as connection:
            assert connection.execute(text("SELECT current_user")).scalar() == "chatkit_app"
            assert connection.execute(text("SELECT count(*) FROM threads")).scalar() == 0
        for statement in ("CREATE TABLE sneaky (id int)", "DROP TABLE threads"):
            with engine.connect() as connection, pytest.raises(ProgrammingError):
                connection.execute(text(statement))
    finally:
        engine.dispose()

    retention = aws.resource(stack, "RetentionFunction")
    configuration = aws.client("lambda").get_function_configuration(FunctionName=retention)
    assert str(configuration["Environment"]["Variables"]["RETENTION_DAYS"]) == "90"
    events = aws.client("events")
    scheduled = [
        rule
        for rule in events.list_rules()["Rules"]
        if any(
            target["Arn"].endswith(retention)
            for target in events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
        )
    ]
    assert [rule["ScheduleExpression"] for rule in scheduled] == ["rate(1 day)"]
    assert aws.delete_stack(stack) == "DELETE_COMPLETE"
