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
from typing import Any

import pytest
from cfnlint.api import lint_file
from cfnlint.decode import cfn_yaml

from tests.support.paths import REPO_ROOT

ROOT = REPO_ROOT
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
    assert set(found) == {
        "ChatFunction",
        "ConversationsFunction",
        "MigrationFunction",
        "RetentionFunction",
    }
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
    assert url["AuthType"] == {"Ref": "FunctionUrlAuthType"}
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
    assert crud["FunctionUrlConfig"]["AuthType"] == {"Ref": "FunctionUrlAuthType"}
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
        "ChatRole": {"DatabaseSecretArn", "ModelApiKeySecretArn", "JwtSecretArn", "McpSecretArns"},
        "ConversationsRole": {"DatabaseSecretArn", "JwtSecretArn"},
        "MigrationRole": {"MigrationDatabaseSecretArn", "DatabaseSecretArn"},
        "RetentionRole": {"DatabaseSecretArn"},
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
    assert _rules_hold(
        template, overrides.get("SubnetIds", ""), overrides.get("SecurityGroupIds", "")
    ), f"{env}: SubnetIds and SecurityGroupIds go together"


def test_layers_are_built_by_the_layers_makefile(resources: dict[str, Any]) -> None:
    makefile = (ROOT / "layers" / "Makefile").read_text()
    for name in ("CoreLayer", "AgentLayer"):
        layer = resources[name]
        assert layer["Metadata"]["BuildMethod"] == "makefile"
        assert layer["Metadata"]["ContextPath"] == "layers"
        assert f"build-{name}:" in makefile
        assert (ROOT / layer["Properties"]["ContentUri"] / "requirements.txt").is_file()


# --- first deploy that fails safely (issue 12) -----------------------------------------------

FULL_SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:chatkit/dev/database-AbC123"


def test_log_groups_do_not_block_a_retry_after_a_failed_create(resources: dict[str, Any]) -> None:
    """A failed first create must not leave a group behind whose fixed name blocks the retry."""
    groups = {n: r for n, r in resources.items() if r["Type"] == "AWS::Logs::LogGroup"}
    assert len(groups) == len(functions(resources))  # one per function
    for name, group in groups.items():
        # kept when the stack is deleted, removed when the create that made it rolls back
        assert group["DeletionPolicy"] == "RetainExceptOnCreate", name
        # and no fixed name, so a group kept from a deleted stack never collides with a new one
        assert "LogGroupName" not in group["Properties"], name


def test_the_migration_function_is_never_retried_by_lambda(resources: dict[str, Any]) -> None:
    """Custom resources are invoked asynchronously; Lambda's two retries would run after FAILED."""
    function = resources["MigrationFunction"]["Properties"]
    assert function["EventInvokeConfig"]["MaximumRetryAttempts"] == 0


@pytest.mark.parametrize("parameter", SECRET_PARAMETERS)
@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        (FULL_SECRET_ARN, True),
        ("arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:db-Zz9Yy8", True),
        # what `aws secretsmanager describe-secret` does NOT print: no suffix, IAM never matches
        ("arn:aws:secretsmanager:us-east-1:123456789012:secret:chatkit/dev/database", False),
        ("arn:aws:secretsmanager:us-east-1:123456789012:secret:chatkit/dev/database-*", False),
        ("arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbC12", False),
    ],
)
def test_secret_parameters_require_the_full_arn(
    template: dict[str, Any], parameter: str, value: str, accepted: bool
) -> None:
    pattern = template["Parameters"][parameter]["AllowedPattern"]
    assert bool(re.fullmatch(pattern, value)) is accepted


def test_public_urls_have_a_concurrency_cap(
    template: dict[str, Any], resources: dict[str, Any]
) -> None:
    parameters = template["Parameters"]
    # Public unless the stage puts the optional edge stack in front (infra/edge.yaml).
    assert parameters["FunctionUrlAuthType"]["Default"] == "NONE"
    for name, parameter in (
        ("ChatFunction", "ChatReservedConcurrency"),
        ("ConversationsFunction", "ConversationsReservedConcurrency"),
    ):
        properties = resources[name]["Properties"]
        assert properties["FunctionUrlConfig"]["AuthType"] == {"Ref": "FunctionUrlAuthType"}
        assert properties["ReservedConcurrentExecutions"] == {"Ref": parameter}
        assert parameters[parameter]["MinValue"] >= 1, "0 would throttle every request"
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    caps = {}
    for env in ("dev", "staging", "prod"):
        overrides = dict(
            item.split("=", 1)
            for item in config[env]["deploy"]["parameters"]["parameter_overrides"]
        )
        caps[env] = int(overrides["ChatReservedConcurrency"]) + int(
            overrides["ConversationsReservedConcurrency"]
        )
    assert caps["dev"] <= caps["staging"] <= caps["prod"]
    # Without RDS Proxy each sandbox may hold DB_POOL_SIZE + DB_MAX_OVERFLOW connections: the dev
    # and staging caps stay under the smallest Aurora Serverless v2 instance's connection limit.
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    per_sandbox = int(env["DB_POOL_SIZE"]) + int(env["DB_MAX_OVERFLOW"])
    assert caps["staging"] * per_sandbox + 1 <= AURORA_MIN_ACU_CONNECTIONS


AURORA_MIN_ACU_CONNECTIONS = 189
"""max_connections of Aurora PostgreSQL Serverless v2 with a 1-ACU maximum (AWS documentation)."""


def _evaluate_rule(expression: Any, values: dict[str, list[str]]) -> Any:
    """The Rules intrinsic subset the template uses, evaluated for given parameter values."""
    if isinstance(expression, dict):
        [(key, argument)] = expression.items()
        match key:
            case "Ref":
                return values[argument]
            case "Fn::Or":
                return any(_evaluate_rule(item, values) for item in argument)
            case "Fn::And":
                return all(_evaluate_rule(item, values) for item in argument)
            case "Fn::Not":
                return not _evaluate_rule(argument[0], values)
            case "Fn::EachMemberEquals":
                members = _evaluate_rule(argument[0], values)
                return all(member == argument[1] for member in members)
            case "Fn::Equals":
                left, right = (_evaluate_rule(item, values) for item in argument)
                return left == right
        raise AssertionError(f"unsupported rule function {key}")
    return expression


def rules_hold(template: dict[str, Any], **given: str) -> bool:
    """Every rule whose ``RuleCondition`` holds, for these parameter values (else defaults)."""
    values: dict[str, Any] = {}
    for name, parameter in template["Parameters"].items():
        value = str(given.get(name, parameter.get("Default", "")))
        values[name] = value.split(",") if parameter["Type"] == "CommaDelimitedList" else value
    return all(
        _evaluate_rule(assertion["Assert"], values)
        for rule in template["Rules"].values()
        if _evaluate_rule(rule.get("RuleCondition", True), values)
        for assertion in rule["Assertions"]
    )


def _rules_hold(template: dict[str, Any], subnets: str, groups: str) -> bool:
    return rules_hold(template, SubnetIds=subnets, SecurityGroupIds=groups, Stage="dev")


@pytest.mark.parametrize(
    ("subnets", "groups", "valid"),
    [
        ("", "", True),
        ("subnet-a,subnet-b", "sg-1", True),
        ("subnet-a,subnet-b", "", False),  # Lambda would reject the VpcConfig mid-deploy
        ("", "sg-1", False),  # silently no VPC before
    ],
)
def test_vpc_needs_subnets_and_security_groups_together(
    template: dict[str, Any], subnets: str, groups: str, valid: bool
) -> None:
    assert _rules_hold(template, subnets, groups) is valid


@pytest.mark.parametrize(
    ("parameters", "valid"),
    [
        ({"Stage": "prod"}, True),
        ({"Stage": "prod", "JwtJwksUrl": "https://idp/jwks"}, False),
        ({"Stage": "dev", "JwtJwksUrl": "https://idp/jwks", "JwtIssuer": "https://idp/"}, False),
        ({"Stage": "dev", "JwtJwksUrl": "https://idp/jwks", "JwtAudience": "chatkit"}, False),
        (
            {
                "Stage": "prod",
                "JwtJwksUrl": "https://idp/jwks",
                "JwtIssuer": "https://idp/",
                "JwtAudience": "chatkit",
            },
            True,
        ),
        ({"Stage": "dev", "DatabaseSslMode": "disable"}, True),
        ({"Stage": "staging", "DatabaseSslMode": "disable"}, False),
        ({"Stage": "prod", "DatabaseSslMode": "disable"}, False),
        ({"Stage": "prod", "DatabaseSslMode": "verify-full"}, True),
    ],
)
def test_jwks_tokens_are_bound_and_database_tls_stays_on_outside_dev(
    template: dict[str, Any], parameters: dict[str, str], valid: bool
) -> None:
    assert rules_hold(template, **parameters) is valid


def test_web_adapter_is_the_snapstart_capable_release(template: dict[str, Any]) -> None:
    parameter = template["Parameters"]["WebAdapterLayerVersion"]
    assert parameter["Default"] == 30  # v1.1.0
    assert parameter["MinValue"] == 30


def test_deployed_chat_refuses_the_offline_model_unless_asked(
    template: dict[str, Any], resources: dict[str, Any]
) -> None:
    env = environment(template, resources["ChatFunction"]["Properties"])
    assert env["STAGE"] == {"Ref": "Stage"}
    assert env["MODEL_REQUIRED"] == {"Fn::If": ["IsDevStage", "false", "true"]}
    assert env["MODEL"] == {"Fn::If": ["IsOfflineModel", "offline", {"Ref": "AWS::NoValue"}]}
    assert template["Conditions"]["IsDevStage"] == {"Fn::Equals": [{"Ref": "Stage"}, "dev"]}
    assert template["Conditions"]["IsOfflineModel"] == {
        "Fn::Equals": [{"Ref": "ModelName"}, "offline"]
    }
    for name in ("ConversationsFunction", "MigrationFunction"):  # they never build a model
        assert "MODEL_REQUIRED" not in environment(template, resources[name]["Properties"])


def test_rds_managed_secrets_get_their_endpoint_from_parameters(
    template: dict[str, Any], resources: dict[str, Any]
) -> None:
    """An RDS-managed master secret holds only username and password: the host comes from here."""
    app = environment(template, resources["ConversationsFunction"]["Properties"])
    assert app["DATABASE_HOST"] == {
        "Fn::If": ["HasDatabaseHost", {"Ref": "DatabaseHost"}, {"Ref": "AWS::NoValue"}]
    }
    assert app["DATABASE_PORT"]["Fn::If"][1] == {"Ref": "DatabasePort"}
    assert app["DATABASE_NAME"]["Fn::If"][1] == {"Ref": "DatabaseName"}
    migration = environment(template, resources["MigrationFunction"]["Properties"])
    # the migration job's own host (the database, not the proxy), else the app's
    assert migration["DATABASE_HOST"]["Fn::If"][:2] == [
        "HasMigrationDatabaseHost",
        {"Ref": "MigrationDatabaseHost"},
    ]
    assert migration["DATABASE_HOST"]["Fn::If"][2]["Fn::If"][1] == {"Ref": "DatabaseHost"}


# --- SnapStart (issue 11, template part) -----------------------------------------------------


def test_snapstart_is_switchable_on_the_app_functions(
    template: dict[str, Any], resources: dict[str, Any]
) -> None:
    assert template["Parameters"]["SnapStart"]["Default"] == "false"
    assert template["Conditions"]["UseSnapStart"] == {"Fn::Equals": [{"Ref": "SnapStart"}, "true"]}
    runtime = template["Globals"]["Function"]["Runtime"]
    assert tuple(int(p) for p in runtime.removeprefix("python").split(".")) >= (3, 12)
    for name in APP_FUNCTIONS:
        properties = resources[name]["Properties"]
        assert properties["SnapStart"] == {
            "Fn::If": ["UseSnapStart", {"ApplyOn": "PublishedVersions"}, {"Ref": "AWS::NoValue"}]
        }
        # SnapStart serves published versions only: the URL is on the alias SAM creates
        assert properties["AutoPublishAlias"] == "live"
        assert "FunctionUrlConfig" in properties
        # what SnapStart cannot be combined with
        assert "ProvisionedConcurrencyConfig" not in properties
        assert "FileSystemConfigs" not in properties
        assert properties.get("EphemeralStorage", {}).get("Size", 512) <= 512


def test_the_web_adapter_bridges_the_snapshot(
    template: dict[str, Any], resources: dict[str, Any]
) -> None:
    env = environment(template, resources["ChatFunction"]["Properties"])
    assert env["AWS_LWA_SNAPSTART_BEFORE_CHECKPOINT_PATH"] == "/_lwa/before-checkpoint"
    assert env["AWS_LWA_SNAPSTART_AFTER_RESTORE_PATH"] == "/_lwa/after-restore"
    assert template["Parameters"]["WebAdapterLayerVersion"]["MinValue"] >= 30  # v1.1.0


def test_snapstart_per_stage() -> None:
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    values = {
        env: dict(
            item.split("=", 1)
            for item in config[env]["deploy"]["parameters"]["parameter_overrides"]
        )["SnapStart"]
        for env in ("dev", "staging", "prod")
    }
    assert values == {"dev": "false", "staging": "true", "prod": "true"}


def test_attachments_bucket_is_private_encrypted_and_expires_unsent_uploads(
    resources: dict[str, Any],
) -> None:
    bucket = resources["AttachmentsBucket"]
    assert bucket["DeletionPolicy"] == "RetainExceptOnCreate"
    properties = bucket["Properties"]
    assert set(properties["PublicAccessBlockConfiguration"].values()) == {True}
    [encryption] = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
    rules = {rule["Id"]: rule for rule in properties["LifecycleConfiguration"]["Rules"]}
    unsent = rules["expire-unsent-uploads"]
    assert (unsent["Status"], unsent["Prefix"], unsent["ExpirationInDays"]) == (
        "Enabled",
        "uploads/",
        1,
    )
    policy = resources["AttachmentsBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert policy[0]["Effect"] == "Deny"
    assert policy[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_attachments_cors_allows_the_origins_and_the_chatkit_frame(
    template: dict[str, Any], resources: dict[str, Any]
) -> None:
    [rule] = resources["AttachmentsBucket"]["Properties"]["CorsConfiguration"]["CorsRules"]
    assert set(rule["AllowedMethods"]) == {"PUT", "GET", "HEAD"}
    assert rule["AllowedHeaders"] == ["content-type"]
    condition, with_frame, without = rule["AllowedOrigins"]["Fn::If"]
    assert condition == "HasChatKitFrameOrigin"
    assert _refs(with_frame) == {"AllowedOrigins", "ChatKitFrameOrigin"}
    assert without == {"Ref": "AllowedOrigins"}
    assert template["Parameters"]["ChatKitFrameOrigin"]["Default"] == (
        "https://cdn.platform.openai.com"
    )


def test_attachment_permissions_are_object_level_and_minimal(
    template: dict[str, Any], resources: dict[str, Any]
) -> None:
    expected = {
        "ChatRole": {"s3:PutObject", "s3:GetObject", "s3:DeleteObject"},
        "ConversationsRole": {"s3:DeleteObject"},
        "RetentionRole": {"s3:DeleteObject"},
        "MigrationRole": set(),
    }
    for role, actions in expected.items():
        s3 = [
            statement
            for statement in _statements(resources[role])
            if any(action.startswith("s3:") for action in _as_list(statement["Action"]))
        ]
        granted = {action for statement in s3 for action in _as_list(statement["Action"])}
        assert granted == actions, role
        for statement in s3:
            assert statement["Resource"] == {"Fn::Sub": "${AttachmentsBucket.Arn}/*"}
    for name in (*APP_FUNCTIONS, "RetentionFunction"):
        variables = environment(template, functions(resources)[name])
        assert variables["ATTACHMENTS_BUCKET"] == {"Ref": "AttachmentsBucket"}, name
