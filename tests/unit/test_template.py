"""The SAM template, samconfig.toml and the layer build agree with each other and with the code.

cfn-lint validates the template against the CloudFormation/SAM schemas; these tests pin what a
schema cannot know: that handlers exist, that the streaming function is wired to the Lambda Web
Adapter, that migrations run before the app functions update, that IAM reads exactly the given
secrets, and that no secret value is in the template.
"""

from __future__ import annotations

import ast
import os
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import lint_file
from cfnlint.decode import cfn_yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = ROOT / "template.yaml"
APP_FUNCTIONS = ("ChatFunction", "ConversationsFunction")
SECRET_PARAMETERS = (
    "DatabaseSecretArn",
    "MigrationDatabaseSecretArn",
    "ModelApiKeySecretArn",
    "JwtSecretArn",
)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return cfn_yaml.load(str(TEMPLATE_PATH))


@pytest.fixture(scope="module")
def resources(template: dict[str, Any]) -> dict[str, Any]:
    return template["Resources"]


def functions(resources: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: resource["Properties"]
        for name, resource in resources.items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


def environment(template: dict[str, Any], properties: dict[str, Any]) -> dict[str, Any]:
    merged = dict(template["Globals"]["Function"]["Environment"]["Variables"])
    merged.update(properties.get("Environment", {}).get("Variables", {}))
    return merged


def test_cfn_lint_reports_nothing() -> None:
    matches = lint_file(TEMPLATE_PATH)
    assert [str(match) for match in matches] == []


def test_every_handler_exists_in_its_code_folder(resources: dict[str, Any]) -> None:
    found = functions(resources)
    assert set(found) == {"ChatFunction", "ConversationsFunction", "MigrationFunction"}
    for name, properties in found.items():
        code_dir = ROOT / properties["CodeUri"]
        handler = properties["Handler"]
        if handler.endswith(".sh"):
            script = code_dir / handler
            assert script.is_file(), name
            assert os.access(script, os.X_OK), f"{script} must be executable"
            continue
        module, _, attribute = handler.rpartition(".")
        source = code_dir / (module.replace(".", "/") + ".py")
        assert source.is_file(), f"{name}: {source} missing"
        tree = ast.parse(source.read_text())
        defined = {
            node.name
            for node in tree.body
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        }
        assert attribute in defined, f"{name}: {handler} is not a function in {source}"


def test_chat_function_streams_through_the_web_adapter(
    template: dict[str, Any], resources: dict[str, Any]
) -> None:
    chat = resources["ChatFunction"]["Properties"]
    assert chat["Handler"] == "run.sh"
    env = environment(template, chat)
    assert env["AWS_LAMBDA_EXEC_WRAPPER"] == "/opt/bootstrap"
    assert env["AWS_LWA_INVOKE_MODE"] == "response_stream"
    assert env["AWS_LWA_READINESS_CHECK_PATH"] == "/health"
    assert env["PORT"] == "8080"
    url = chat["FunctionUrlConfig"]
    assert url["InvokeMode"] == "RESPONSE_STREAM"
    assert url["AuthType"] == "NONE"
    assert url["Cors"]["AllowOrigins"] == {"Ref": "AllowedOrigins"}
    adapter = [layer for layer in chat["Layers"] if "Fn::Sub" in layer]
    assert len(adapter) == 1
    assert ":753240598075:layer:LambdaAdapterLayerX86:" in adapter[0]["Fn::Sub"]
    # the adapter layer, the layers' wheels and the function share one architecture
    assert template["Globals"]["Function"]["Architectures"] == ["x86_64"]
    for layer in ("CoreLayer", "AgentLayer"):
        assert resources[layer]["Properties"]["CompatibleArchitectures"] == ["x86_64"]
        assert resources[layer]["Metadata"]["BuildArchitecture"] == "x86_64"
    makefile = (ROOT / "layers" / "Makefile").read_text()
    assert re.search(r"^PLATFORM \?= x86_64-manylinux", makefile, re.MULTILINE)


def test_conversations_function_is_buffered_behind_mangum(resources: dict[str, Any]) -> None:
    crud = resources["ConversationsFunction"]["Properties"]
    assert crud["FunctionUrlConfig"]["InvokeMode"] == "BUFFERED"
    assert crud["FunctionUrlConfig"]["AuthType"] == "NONE"
    assert crud["FunctionUrlConfig"]["Cors"]["AllowOrigins"] == {"Ref": "AllowedOrigins"}
    assert crud["Layers"] == [{"Ref": "CoreLayer"}], "the agent stack stays out of CRUD"


def test_migrations_run_before_the_app_functions_and_on_every_code_change(
    resources: dict[str, Any],
) -> None:
    migration = resources["DatabaseMigration"]
    assert migration["Type"] == "Custom::DatabaseMigration"
    properties = migration["Properties"]
    # a constant ServiceToken (CloudFormation refuses to change it) ...
    assert properties["ServiceToken"] == {"Ref": "MigrationFunction.Alias"}
    # ... and a property that changes whenever a new migration function version is published
    assert properties["FunctionVersion"] == {"Ref": "MigrationFunction.Version"}
    function = resources["MigrationFunction"]["Properties"]
    assert function["AutoPublishAlias"]
    assert function["AutoPublishAliasAllProperties"] is True
    assert function["Layers"] == [{"Ref": "CoreLayer"}]
    assert resources["CoreLayer"]["Properties"]["PublishLambdaVersion"] is True
    assert properties["ServiceTimeout"] > function["Timeout"]
    for name in APP_FUNCTIONS:
        assert resources[name]["DependsOn"] == "DatabaseMigration"


def test_each_function_logs_to_its_own_group_with_retention(resources: dict[str, Any]) -> None:
    for name, properties in functions(resources).items():
        group = properties["LoggingConfig"]["LogGroup"]["Ref"]
        assert resources[group]["Type"] == "AWS::Logs::LogGroup", name
        assert resources[group]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def _statements(role: dict[str, Any]) -> list[dict[str, Any]]:
    statements = []
    for policy in role["Properties"]["Policies"]:
        for statement in policy["PolicyDocument"]["Statement"]:
            if "Fn::If" in statement:
                statement = statement["Fn::If"][1]
            statements.append(statement)
    return statements


def _refs(value: Any) -> set[str]:
    """Every ``Ref`` target inside ``value`` (through ``Fn::If`` branches and lists)."""
    if isinstance(value, dict):
        found = {value["Ref"]} if "Ref" in value else set()
        return found.union(*(_refs(item) for item in value.values()))
    if isinstance(value, list):
        return set().union(*(_refs(item) for item in value))
    return set()


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_iam_reads_exactly_the_configured_secrets(resources: dict[str, Any]) -> None:
    expected = {
        "ChatRole": {"DatabaseSecretArn", "ModelApiKeySecretArn", "JwtSecretArn"},
        "ConversationsRole": {"DatabaseSecretArn", "JwtSecretArn"},
        "MigrationRole": {"MigrationDatabaseSecretArn", "DatabaseSecretArn"},
    }
    for name, properties in functions(resources).items():
        role_name = properties["Role"]["Fn::GetAtt"][0]
        role = resources[role_name]
        refs: set[str] = set()
        for statement in _statements(role):
            actions = _as_list(statement["Action"])
            assert not any(action == "*" or action.endswith(":*") for action in actions)
            if statement["Resource"] == "*":
                assert all(action.startswith("xray:") for action in actions), statement
            if "secretsmanager:GetSecretValue" in actions:
                assert actions == ["secretsmanager:GetSecretValue"]
                refs |= _refs(statement["Resource"])
            if "kms:Decrypt" in actions:
                assert statement["Condition"]["StringEquals"]["kms:ViaService"]
        assert refs - {"AWS::NoValue"} == expected[role_name], name
        managed = role["Properties"]["ManagedPolicyArns"]
        assert [policy["Fn::If"][0] for policy in managed] == ["HasVpc"], "VPC access only in a VPC"


def test_no_secret_values_in_the_template(
    template: dict[str, Any], resources: dict[str, Any]
) -> None:
    text = TEMPLATE_PATH.read_text()
    assert not re.search(r"postgres(ql)?(\+\w+)?://", text), "database URLs come from secrets"
    assert not re.search(r"\bsk-[A-Za-z0-9]{8,}", text), "API keys come from secrets"
    for parameter in SECRET_PARAMETERS:
        definition = template["Parameters"][parameter]
        assert definition.get("Default", "") == ""
        assert "secretsmanager" in definition["AllowedPattern"]
    for name, properties in functions(resources).items():
        env = environment(template, properties)
        forbidden = {
            key for key in ("DATABASE_URL", "JWT_SECRET", "OPENAI_API_KEY") if env.get(key)
        }
        assert not forbidden, f"{name} sets {forbidden}: pass an ARN instead"
        # Declared empty for `sam local invoke --env-vars`; an empty variable counts as unset.
        assert env.get("DATABASE_URL") == ""
        assert env.get("JWT_SECRET") == ""


def test_vpc_configuration_is_omitted_without_subnets(template: dict[str, Any]) -> None:
    vpc = template["Globals"]["Function"]["VpcConfig"]["Fn::If"]
    assert vpc[0] == "HasVpc"
    assert vpc[2] == {"Ref": "AWS::NoValue"}
    assert template["Parameters"]["SubnetIds"]["Default"] == ""


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_samconfig_has_a_complete_config_per_environment(
    template: dict[str, Any], env: str
) -> None:
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    assert config["version"] == 0.1
    assert config["default"]["build"]["parameters"] == {"cached": True, "parallel": True}
    deploy = config[env]["deploy"]["parameters"]
    assert deploy["stack_name"] == f"chatkit-backend-{env}"
    assert deploy["capabilities"].split() == ["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"]
    assert deploy["resolve_s3"] is True
    overrides = dict(item.split("=", 1) for item in deploy["parameter_overrides"])
    parameters = template["Parameters"]
    assert set(overrides) <= set(parameters), "override of an unknown parameter"
    required = {name for name, spec in parameters.items() if "Default" not in spec}
    assert required <= set(overrides), f"{env} lacks {required - set(overrides)}"
    assert overrides["Stage"] == env
    for name, value in overrides.items():
        pattern = parameters[name].get("AllowedPattern")
        if pattern:
            assert re.fullmatch(pattern, value), f"{env}: {name}={value}"


def test_layers_are_built_by_the_layers_makefile(resources: dict[str, Any]) -> None:
    makefile = (ROOT / "layers" / "Makefile").read_text()
    for name in ("CoreLayer", "AgentLayer"):
        layer = resources[name]
        assert layer["Metadata"]["BuildMethod"] == "makefile"
        assert layer["Metadata"]["ContextPath"] == "layers"
        assert f"build-{name}:" in makefile
        assert (ROOT / layer["Properties"]["ContentUri"] / "requirements.txt").is_file()
