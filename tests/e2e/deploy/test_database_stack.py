"""The companion database stack (infra/database.yaml): lint, shape, and an emulated deploy whose
outputs become the app stack's parameters (scripts/database_params.py).

moto models the VPC, subnets, route tables, gateway/interface endpoints, NAT, security groups
and IAM; the secret, Aurora cluster and instance, RDS Proxy and the secret's target attachment go
through the shims in tests/support/moto_gaps/ (gap 10). What no emulation shows: that Aurora
accepts the engine version with a 0-ACU minimum, that RDS Proxy reaches the cluster, that the
functions' traffic really leaves through NAT or the endpoints; those need a real account.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from typing import Any

import pytest
from cfnlint.api import lint_file
from cfnlint.decode import cfn_yaml
from chatkit_backend.secrets import database_url_from_secret
from chatkit_backend.settings import get_settings
from sqlalchemy.engine import make_url

from scripts.database_params import FED_PARAMETERS, merged_overrides, render
from tests.support.emulated_deploy import REGION, EmulatedAws
from tests.support.paths import REPO_ROOT

ROOT = REPO_ROOT
DATABASE_TEMPLATE = ROOT / "infra" / "database.yaml"


@pytest.fixture(scope="module")
def database_template() -> dict[str, Any]:
    return cfn_yaml.load(str(DATABASE_TEMPLATE))


@pytest.fixture(scope="module")
def app_template() -> dict[str, Any]:
    return cfn_yaml.load(str(ROOT / "template.yaml"))


def test_cfn_lint_reports_nothing() -> None:
    assert [str(match) for match in lint_file(DATABASE_TEMPLATE)] == []


def test_outputs_are_named_after_the_app_parameters_they_feed(
    database_template: dict[str, Any], app_template: dict[str, Any]
) -> None:
    outputs = set(database_template["Outputs"])
    assert outputs == set(FED_PARAMETERS)
    assert outputs <= set(app_template["Parameters"])


def test_aurora_scales_to_zero_and_keeps_its_data(database_template: dict[str, Any]) -> None:
    parameters = database_template["Parameters"]
    assert parameters["MinCapacity"]["Default"] == 0
    cluster = database_template["Resources"]["DatabaseCluster"]
    assert cluster["DeletionPolicy"] == cluster["UpdateReplacePolicy"] == "Snapshot"
    scaling = cluster["Properties"]["ServerlessV2ScalingConfiguration"]
    assert scaling["MinCapacity"] == {"Ref": "MinCapacity"}
    assert scaling["SecondsUntilAutoPause"] == {"Ref": "AutoPauseSeconds"}
    assert cluster["Properties"]["StorageEncrypted"] is True
    instance = database_template["Resources"]["DatabaseInstance"]["Properties"]
    assert instance["DBInstanceClass"] == "db.serverless"
    assert instance["PubliclyAccessible"] is False


def test_egress_the_functions_need(database_template: dict[str, Any]) -> None:
    """The custom resource's answer is a PUT to S3; secrets from Secrets Manager; model via NAT."""
    resources = database_template["Resources"]
    s3 = resources["S3GatewayEndpoint"]
    assert "Condition" not in s3, "always: the migration's answer to CloudFormation"
    assert s3["Properties"]["VpcEndpointType"] == "Gateway"
    assert resources["NatGateway"]["Condition"] == "UseNat"
    assert resources["SecretsManagerEndpoint"]["Condition"] == "UseSecretsEndpoint"
    assert resources["PrivateDefaultRoute"]["Properties"]["NatGatewayId"] == {"Ref": "NatGateway"}


def test_least_privilege_secrets_rotation_and_egress(database_template: dict[str, Any]) -> None:
    """Two secrets (owner, app role), both rotated in the VPC; the functions' egress is 5432
    inside the VPC and 443, nothing else; the proxy admits the app role only."""
    resources = database_template["Resources"]
    app = resources["AppDatabaseSecret"]["Properties"]["GenerateSecretString"]
    assert json.loads(app["SecretStringTemplate"]) == {"username": "chatkit_app"}
    rotated = {
        resource["Properties"]["SecretId"]["Ref"]
        for resource in resources.values()
        if resource["Type"] == "AWS::SecretsManager::RotationSchedule"
    }
    assert rotated == {"DatabaseSecret", "AppDatabaseSecret"}
    for resource in resources.values():
        if resource["Type"] == "AWS::SecretsManager::RotationSchedule":
            hosted = resource["Properties"]["HostedRotationLambda"]
            assert hosted["RotationType"] == "PostgreSQLSingleUser"
            assert hosted["VpcSecurityGroupIds"] == {"Ref": "FunctionSecurityGroup"}
    egress = resources["FunctionSecurityGroup"]["Properties"]["SecurityGroupEgress"]
    assert {(rule["IpProtocol"], rule["FromPort"], rule["ToPort"]) for rule in egress} == {
        ("tcp", 5432, 5432),
        ("tcp", 443, 443),
    }
    [database_rule] = [rule for rule in egress if rule["FromPort"] == 5432]
    assert database_rule["CidrIp"] == {"Ref": "VpcCidr"}
    [auth] = resources["Proxy"]["Properties"]["Auth"]
    assert auth["SecretArn"] == {"Ref": "AppDatabaseSecret"}


def test_the_migration_job_never_goes_through_the_proxy(database_template: dict[str, Any]) -> None:
    outputs = database_template["Outputs"]
    assert outputs["MigrationDatabaseHost"]["Value"] == {
        "Fn::GetAtt": ["DatabaseCluster", "Endpoint.Address"]
    }
    assert outputs["DatabaseHost"]["Value"]["Fn::If"][0] == "UseProxy"


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_samconfig_per_environment(database_template: dict[str, Any], env: str) -> None:
    config = tomllib.loads((ROOT / "infra" / "samconfig.toml").read_text())
    deploy = config[env]["deploy"]["parameters"]
    assert deploy["stack_name"] == f"chatkit-database-{env}"
    overrides = dict(item.split("=", 1) for item in deploy["parameter_overrides"])
    assert set(overrides) <= set(database_template["Parameters"])
    assert overrides["Stage"] == env
    for name, value in overrides.items():
        pattern = database_template["Parameters"][name].get("AllowedPattern")
        assert pattern is None or re.fullmatch(pattern, value), f"{env}: {name}={value}"


@pytest.mark.parametrize("use_proxy", ["false", "true"])
def test_emulated_deploy_feeds_the_app_stack(
    aws: EmulatedAws,
    app_template: dict[str, Any],
    use_proxy: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stack = f"chatkit-database-proxy-{use_proxy}"
    aws.client("cloudformation").create_stack(
        StackName=stack,
        TemplateBody=DATABASE_TEMPLATE.read_text(),
        Parameters=[
            {"ParameterKey": "Stage", "ParameterValue": "staging"},
            {"ParameterKey": "UseRdsProxy", "ParameterValue": use_proxy},
        ],
        Capabilities=["CAPABILITY_IAM"],
    )
    assert aws.wait(stack) == "CREATE_COMPLETE"
    outputs = aws.outputs(stack)
    overrides = merged_overrides("staging", outputs)

    # every value fits the app template (full secret ARN, both VPC lists) ...
    parameters = app_template["Parameters"]
    for name, value in overrides.items():
        pattern = parameters[name].get("AllowedPattern")
        assert pattern is None or re.fullmatch(pattern, value), f"{name}={value}"
    assert len(overrides["SubnetIds"].split(",")) == 2
    assert overrides["SecurityGroupIds"].startswith("sg-")
    assert overrides["DbPooler"] == use_proxy
    assert overrides["MigrationDatabaseSecretArn"] != overrides["DatabaseSecretArn"]
    assert overrides["Stage"] == "staging"  # the rest of samconfig's list is kept
    # one shell word per pair, whatever the values hold
    assert shlex.split(render(overrides)) == [f"{k}={v}" for k, v in overrides.items()]
    cluster = outputs["MigrationDatabaseHost"]
    assert ".cluster-" in cluster
    assert (outputs["DatabaseHost"] == cluster) is (use_proxy == "false")

    # ... and the secret is in the shape the functions read: the app connects to DatabaseHost
    secret = json.loads(
        aws.client("secretsmanager").get_secret_value(SecretId=overrides["DatabaseSecretArn"])[
            "SecretString"
        ]
    )
    assert {"host", "port", "username", "password", "dbname"} <= set(secret)
    assert secret["host"] == cluster
    for name, value in {**aws.cloud.environment, "DATABASE_HOST": outputs["DatabaseHost"]}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    get_settings.cache_clear()
    try:
        url = make_url(database_url_from_secret(overrides["DatabaseSecretArn"], force_fetch=True))
    finally:
        get_settings.cache_clear()
    assert (url.host, url.database, url.username) == (
        outputs["DatabaseHost"],
        "chatkit",
        "chatkit_app",  # the app role (no DDL); the owner's secret is the migration job's
    )
    owner = json.loads(
        aws.client("secretsmanager").get_secret_value(
            SecretId=overrides["MigrationDatabaseSecretArn"]
        )["SecretString"]
    )
    assert owner["username"] == "chatkit_admin"
    assert owner["host"] == cluster
