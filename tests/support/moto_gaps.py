"""Shims for what moto's server mode lacks, so the packaged template runs its whole lifecycle on it.

Each shim below names one moto (5.2) gap. None of them changes what the project's code does: the
migration function runs from the zip ``sam package`` uploaded to moto's S3 (plus its layers),
with the environment the template gave it, reads its secret from moto's Secrets Manager, and
answers through the pre-signed URL moto handed out. What is shimmed is CloudFormation's and
Lambda's side of the protocol:

1. **Lambda runs code only in Docker** (absent here): :func:`run_function` runs the deployed zip
   in a subprocess with the function's environment (``lambda_bootstrap.py`` stands in for the
   runtime). The packaged layer is the source folder (``sam build``'s makefile step, minutes,
   is not part of this test), so third-party dependencies come from this interpreter's
   site-packages, after the zip's own code on the path.
2. **The ResponseURL names ``host.docker.internal``** (moto assumes the function runs in a
   container) **and is no pre-signed S3 URL**: rewritten to the server's loopback address, and
   the emulated function is run with ``CUSTOM_RESOURCE_LOOPBACK_RESPONSES=true`` so the
   migration answers it (it answers only pre-signed S3 URLs otherwise).
3. **No CloudFormation model for ``AWS::Lambda::Alias``, ``AWS::Lambda::Url`` and
   ``AWS::Lambda::EventInvokeConfig``**: small models over moto's own Lambda API (whose function
   URLs take no qualifier: a URL on an alias is recorded on the function).
4. **``AWS::Lambda::Version``: ``Ref`` gives the logical id, ``GetAtt Version`` is missing; ``Ref``
   of ``AWS::Lambda::LayerVersion`` gives moto's model object** (a stack update then fails inside
   moto): the ARNs and the version number, as CloudFormation gives them.
5. **Custom resources only ever get Create**: Update (with ``OldResourceProperties`` and the
   physical id the function answered) and Delete are sent here, and the stack waits for the answer.
6. **A FAILED answer is ignored** (the stack stays in progress forever): a failed create rolls
   back (Delete to the custom resource, resources deleted per ``DeletionPolicy``) to
   ROLLBACK_COMPLETE; a failed Update gets the rollback-shaped Update CloudFormation sends (old
   properties, same ServiceToken, the alias still on the new code) and the stack ends in
   UPDATE_ROLLBACK_COMPLETE or UPDATE_ROLLBACK_FAILED. Other resources are not rolled back
   (moto cannot); the lifecycle test deploys a fixed revision next, as an operator would.
7. **``RetainExceptOnCreate`` is unknown** (moto deletes such resources on stack delete): kept on
   delete, deleted when a create rolls back.
9. **Stack deletes run in no particular order** (the custom resource's function could be gone
   before its Delete is sent): reverse dependency order, as CloudFormation deletes.
8. **Stack updates apply new and changed resources in template order, ignoring ``Ref``
   dependencies** (a new Lambda version would be published before the function got its new
   code): applied in dependency order; resources the new template dropped are removed afterwards
   (as CloudFormation's cleanup does), honouring ``DeletionPolicy``.

10. **No CloudFormation model for ``AWS::SecretsManager::Secret``, ``AWS::RDS::DBCluster``,
    ``AWS::RDS::DBProxy``,
    ``AWS::RDS::DBProxyTargetGroup`` and ``AWS::SecretsManager::SecretTargetAttachment``, and
    moto's ``AWS::RDS::DBInstance`` knows no ``aurora-postgresql`` engine** (the
    companion database stack, ``infra/database.yaml``): models over moto's RDS and Secrets
    Manager APIs. The attachment writes host, port, dbname and engine into the secret, as
    Secrets Manager does, so the test reads the secret the functions would read. moto does not
    resolve ``{{resolve:secretsmanager:...}}`` references: the cluster's master password is the
    literal reference (nothing connects to the emulated cluster).

Not shimmed: moto creates resources that ``DependsOn`` a custom resource without waiting for its
answer, so the lifecycle test checks ordering-sensitive outcomes only after the stack settles.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import sysconfig
import tempfile
import threading
import uuid
import zipfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self
from urllib.parse import urlsplit, urlunsplit

from moto.awslambda.models import LambdaFunction, LambdaVersion, LayerVersion, lambda_backends
from moto.cloudformation import cloudformation_backends
from moto.cloudformation import parsing as cfn_parsing
from moto.cloudformation.custom_model import CustomModel
from moto.cloudformation.models import Stack
from moto.cloudformation.responses import CloudFormationResponse
from moto.core.common_models import CloudFormationModel
from moto.rds.models import rds_backends
from moto.secretsmanager.models import secretsmanager_backends

BOOTSTRAP = Path(__file__).with_name("lambda_bootstrap.py")
ANSWER_TIMEOUT_SECONDS = 120.0
INVOKE_TIMEOUT_SECONDS = 120.0


@dataclass
class Answer:
    """One custom resource answer as the function PUT it, with the request it answered."""

    request_type: str
    body: dict[str, Any]

    @property
    def status(self) -> str:
        return str(self.body["Status"])

    @property
    def reason(self) -> str:
        return str(self.body.get("Reason", ""))


@dataclass
class Invocation:
    """One run of a deployed function (gap 1), kept for the test's assertions."""

    function_name: str
    version: str
    returncode: int
    stdout: str
    stderr: str


@dataclass
class EmulatedCloud:
    """What the shims share: the server's address and the logs the test reads."""

    endpoint: str
    """``http://127.0.0.1:<port>`` of the moto server."""
    environment: dict[str, str]
    """AWS settings the deployed functions get (fake credentials, region, endpoint)."""
    answers: list[Answer] = field(default_factory=list)
    invocations: list[Invocation] = field(default_factory=list)
    _requests: dict[str, str] = field(default_factory=dict)
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def record(self, body: dict[str, Any]) -> Answer:
        with self._changed:
            answer = Answer(self._requests.get(str(body.get("RequestId")), "Create"), body)
            self.answers.append(answer)
            self._changed.notify_all()
            return answer

    def expect(self, request_id: str, request_type: str) -> None:
        with self._changed:
            self._requests[request_id] = request_type

    def sent_by_us(self, request_id: str) -> bool:
        with self._changed:
            return request_id in self._requests

    def wait_for(self, request_id: str, timeout: float = ANSWER_TIMEOUT_SECONDS) -> Answer:
        def found() -> Answer | None:
            return next((a for a in self.answers if a.body.get("RequestId") == request_id), None)

        with self._changed:
            if not self._changed.wait_for(lambda: found() is not None, timeout=timeout):
                raise TimeoutError(f"no answer to custom resource request {request_id}")
            answer = found()
            assert answer is not None
            return answer

    def physical_id(self, stack_id: str, logical_id: str) -> str | None:
        """The physical id the function last answered for the resource (CloudFormation keeps it)."""
        with self._changed:
            for answer in reversed(self.answers):
                body = answer.body
                if body.get("StackId") == stack_id and body.get("LogicalResourceId") == logical_id:
                    return str(body["PhysicalResourceId"])
        return None


# --- gap 1 and 2: running a deployed function -----------------------------------------------


def run_function(cloud: EmulatedCloud, function: LambdaFunction, payload: dict[str, Any]) -> str:
    """Run ``function``'s deployed zip and layers on ``payload`` in a subprocess; its output."""
    backend = lambda_backends[function.account_id][function.region]
    with tempfile.TemporaryDirectory(prefix="emulated-lambda-") as scratch:
        task, opt = Path(scratch, "task"), Path(scratch, "opt")
        zipfile.ZipFile(io.BytesIO(function.code_bytes)).extractall(task)
        for layer in function.layers:
            version = backend.layers_versions_by_arn(layer["Arn"])
            assert version is not None, f"layer {layer['Arn']} is not deployed"
            zipfile.ZipFile(io.BytesIO(version.code_bytes)).extractall(opt)
        dependencies = str(sysconfig.get_paths()["purelib"])
        environment = {
            "PATH": "/usr/bin:/bin",
            **{key: str(value) for key, value in function.environment_vars.items()},
            **cloud.environment,
            "AWS_LAMBDA_FUNCTION_NAME": function.function_name,
            "AWS_LAMBDA_FUNCTION_VERSION": str(function.version),
            "CUSTOM_RESOURCE_LOOPBACK_RESPONSES": "true",  # gap 2
            "PYTHONPATH": ":".join([str(task), str(opt / "python"), str(opt), dependencies]),
        }
        result = subprocess.run(
            [sys.executable, "-P", str(BOOTSTRAP), str(function.handler), str(function.timeout)],
            input=json.dumps(payload),
            capture_output=True,
            text=True,
            cwd=task,
            env=environment,
            timeout=INVOKE_TIMEOUT_SECONDS,
            check=False,
        )
    cloud.invocations.append(
        Invocation(
            function.function_name,
            str(function.version),
            result.returncode,
            result.stdout,
            result.stderr,
        )
    )
    return result.stdout


def _reachable(cloud: EmulatedCloud, url: str) -> str:
    """moto's ResponseURL with its Docker host replaced by the server's own address (gap 2)."""
    parts, server = urlsplit(url if "://" in url else f"http://{url}"), urlsplit(cloud.endpoint)
    return urlunsplit((server.scheme, server.netloc, parts.path, parts.query, ""))


# --- gap 3 and 4: the Lambda resources moto's CloudFormation does not model -------------------


class _FromProperties:
    """Mixin: a model built from its resource's ``Properties`` alone. (moto finds models among
    the *direct* subclasses of ``CloudFormationModel``, so this cannot be their common base.)"""

    def __init__(self, account_id: str, region: str, properties: dict[str, Any]) -> None:
        raise NotImplementedError

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> Self:
        return cls(account_id, region_name, cloudformation_json["Properties"])


class _LambdaAlias(_FromProperties, CloudFormationModel):
    """``AWS::Lambda::Alias`` over moto's alias API; ``Ref`` is the alias ARN."""

    def __init__(self, account_id: str, region: str, properties: dict[str, Any]) -> None:
        self.account_id, self.region = account_id, region
        self.function_name = str(properties["FunctionName"])
        self.name = str(properties["Name"])
        self.version = str(properties["FunctionVersion"])
        backend = lambda_backends[account_id][region]
        self.arn = backend.create_alias(
            name=self.name,
            function_name=self.function_name,
            function_version=self.version,
            description="",
            routing_config=None,  # type: ignore[arg-type]
        ).arn

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::Lambda::Alias"

    @property
    def physical_resource_id(self) -> str:
        return self.arn

    @classmethod
    def update_from_cloudformation_json(
        cls,
        original_resource: _LambdaAlias,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> _LambdaAlias:
        version = str(cloudformation_json["Properties"]["FunctionVersion"])
        lambda_backends[account_id][region_name].update_alias(
            name=original_resource.name,
            function_name=original_resource.function_name,
            function_version=version,
            description="",
            routing_config=None,  # type: ignore[arg-type]
        )
        original_resource.version = version
        return original_resource

    def delete(self, account_id: str, region_name: str) -> None:
        lambda_backends[account_id][region_name].delete_alias(self.name, self.function_name)


class _LambdaUrl(_FromProperties, CloudFormationModel):
    """``AWS::Lambda::Url`` over moto's function URL API; ``GetAtt FunctionUrl`` works."""

    def __init__(self, account_id: str, region: str, properties: dict[str, Any]) -> None:
        self.function = str(properties["TargetFunctionArn"])
        config: dict[str, Any] = {
            key: properties[key] for key in ("AuthType", "InvokeMode", "Cors") if key in properties
        }
        # moto's URL API takes no qualifier; SAM points the URL at the alias (SnapStart)
        unqualified = ":".join(self.function.split(":")[:7])
        backend = lambda_backends[account_id][region]
        self.url = backend.create_function_url_config(unqualified, config).url + "/"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::Lambda::Url"

    @property
    def physical_resource_id(self) -> str:
        return self.function

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in ("FunctionUrl", "FunctionArn")

    def get_cfn_attribute(self, attribute_name: str) -> str:
        return self.url if attribute_name == "FunctionUrl" else self.function

    @classmethod
    def update_from_cloudformation_json(
        cls,
        original_resource: _LambdaUrl,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> _LambdaUrl:
        return original_resource

    def delete(self, account_id: str, region_name: str) -> None:
        unqualified = ":".join(self.function.split(":")[:7])
        lambda_backends[account_id][region_name].delete_function_url_config(unqualified)


class _EventInvokeConfig(_FromProperties, CloudFormationModel):
    """``AWS::Lambda::EventInvokeConfig`` over moto's API, so the test can read the retries back."""

    def __init__(self, account_id: str, region: str, properties: dict[str, Any]) -> None:
        self.function = str(properties["FunctionName"])
        config: dict[str, Any] = {
            key: properties[key]
            for key in ("MaximumRetryAttempts", "MaximumEventAgeInSeconds")
            if key in properties
        }
        lambda_backends[account_id][region].put_function_event_invoke_config(self.function, config)

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::Lambda::EventInvokeConfig"

    @property
    def physical_resource_id(self) -> str:
        return self.function

    @classmethod
    def update_from_cloudformation_json(
        cls,
        original_resource: _EventInvokeConfig,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> _EventInvokeConfig:
        return cls(account_id, region_name, cloudformation_json["Properties"])

    def delete(self, account_id: str, region_name: str) -> None:
        lambda_backends[account_id][region_name].delete_function_event_invoke_config(self.function)


def _version_created(original: Callable[..., LambdaVersion]) -> Callable[..., LambdaVersion]:
    """moto's version create, remembering the version's ARN for ``Ref`` (gap 4)."""

    def create(
        cls: type[LambdaVersion],
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> LambdaVersion:
        version = original(resource_name, cloudformation_json, account_id, region_name, **kwargs)
        name = cloudformation_json["Properties"]["FunctionName"]
        latest = lambda_backends[account_id][region_name].get_function(name)
        version.arn = f"{latest.function_arn}:{version.version}"  # type: ignore[attr-defined]
        return version

    return create


# --- gap 10: the companion database stack's RDS resources -------------------------------------


class _SimpleModel:
    """Shared plumbing of the gap-10 models: create from properties, no in-place update.

    A mixin, not a ``CloudFormationModel``: moto finds models among that class's *direct*
    subclasses, so each model below names both.
    """

    def __init__(self, name: str, account_id: str, region: str, properties: dict[str, Any]):
        self.name, self.account_id, self.region = name, account_id, region
        self.properties = properties
        self.create()

    def create(self) -> None:
        raise NotImplementedError

    @property
    def physical_resource_id(self) -> str:
        return self.name

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> _SimpleModel:
        name = re.sub(r"[^a-z0-9-]", "-", resource_name.lower())[:60]
        return cls(name, account_id, region_name, cloudformation_json.get("Properties", {}))


class _RdsCluster(_SimpleModel, CloudFormationModel):
    """``AWS::RDS::DBCluster`` over moto's ``create_db_cluster``; ``GetAtt Endpoint.*`` works."""

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::RDS::DBCluster"

    def create(self) -> None:
        p = self.properties
        self.cluster = rds_backends[self.account_id][self.region].create_db_cluster(
            {
                "db_cluster_identifier": self.name,
                "engine": p["Engine"],
                "engine_version": p.get("EngineVersion"),
                "database_name": p.get("DatabaseName"),
                "master_username": p.get("MasterUsername"),
                "master_user_password": p.get("MasterUserPassword"),
                "db_subnet_group_name": p.get("DBSubnetGroupName"),
                "vpc_security_group_ids": p.get("VpcSecurityGroupIds"),
                "storage_encrypted": p.get("StorageEncrypted"),
                "deletion_protection": p.get("DeletionProtection"),
            }
        )

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in ("Endpoint.Address", "Endpoint.Port", "DBClusterArn")

    def get_cfn_attribute(self, attribute_name: str) -> str:
        return {
            "Endpoint.Address": self.cluster.endpoint,
            "Endpoint.Port": "5432",
            "DBClusterArn": self.cluster.db_cluster_arn,
        }[attribute_name]

    def delete(self, account_id: str, region_name: str) -> None:
        rds_backends[account_id][region_name].delete_db_cluster(cluster_identifier=self.name)


class _AuroraInstance(_SimpleModel, CloudFormationModel):
    """``AWS::RDS::DBInstance`` of an Aurora cluster: moto's model knows no ``aurora-postgresql``
    engine; the instance is recorded only (nothing in the test reads it)."""

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::RDS::DBInstance"

    def create(self) -> None:
        assert self.properties.get("DBClusterIdentifier"), "only cluster instances are emulated"


class _RdsProxy(_SimpleModel, CloudFormationModel):
    """``AWS::RDS::DBProxy`` over moto's ``create_db_proxy``; ``GetAtt Endpoint`` works."""

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::RDS::DBProxy"

    def create(self) -> None:
        p = self.properties
        self.name = str(p["DBProxyName"])
        self.proxy = rds_backends[self.account_id][self.region].create_db_proxy(
            db_proxy_name=self.name,
            engine_family=p["EngineFamily"],
            auth=p["Auth"],
            role_arn=p["RoleArn"],
            vpc_subnet_ids=p["VpcSubnetIds"],
            vpc_security_group_ids=p.get("VpcSecurityGroupIds"),
            require_tls=p.get("RequireTLS"),
            idle_client_timeout=None,
            debug_logging=None,
            tags=None,
        )

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr == "Endpoint"

    def get_cfn_attribute(self, attribute_name: str) -> str:
        return str(self.proxy.endpoint)


class _RdsProxyTargets(_SimpleModel, CloudFormationModel):
    """``AWS::RDS::DBProxyTargetGroup``: registers the cluster with moto's proxy."""

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::RDS::DBProxyTargetGroup"

    def create(self) -> None:
        p = self.properties
        rds_backends[self.account_id][self.region].register_db_proxy_targets(
            db_proxy_name=p["DBProxyName"],
            target_group_name=p["TargetGroupName"],
            db_cluster_identifiers=p.get("DBClusterIdentifiers", []),
            db_instance_identifiers=[],
        )


class _Secret(_SimpleModel, CloudFormationModel):
    """``AWS::SecretsManager::Secret`` with ``GenerateSecretString``; ``Ref`` is the full ARN."""

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::SecretsManager::Secret"

    def create(self) -> None:
        p = self.properties
        secrets = secretsmanager_backends[self.account_id][self.region]
        value = p.get("SecretString")
        generate = p.get("GenerateSecretString")
        if generate:
            password = secrets.get_random_password(
                password_length=int(generate.get("PasswordLength", 32)),
                exclude_characters=generate.get("ExcludeCharacters", ""),
                exclude_numbers=False,
                exclude_punctuation=bool(generate.get("ExcludePunctuation")),
                exclude_uppercase=False,
                exclude_lowercase=False,
                include_space=False,
                require_each_included_type=True,
            )
            fields = json.loads(generate["SecretStringTemplate"])
            fields[generate["GenerateStringKey"]] = json.loads(password)["RandomPassword"]
            value = json.dumps(fields)
        created = secrets.create_secret(
            name=str(p.get("Name") or f"{self.name}-{uuid.uuid4().hex[:8]}"),
            secret_string=value,
            secret_binary=None,
            description=p.get("Description"),
            tags=None,
            kms_key_id=p.get("KmsKeyId"),
            client_request_token=None,
            replica_regions=[],
            force_overwrite=False,
        )
        self.name = str(json.loads(created)["ARN"])

    def delete(self, account_id: str, region_name: str) -> None:
        secretsmanager_backends[account_id][region_name].delete_secret(self.name, None, True)


class _SecretTargetAttachment(_SimpleModel, CloudFormationModel):
    """``AWS::SecretsManager::SecretTargetAttachment``: host, port, dbname, engine to the secret."""

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::SecretsManager::SecretTargetAttachment"

    def create(self) -> None:
        p = self.properties
        cluster = rds_backends[self.account_id][self.region].clusters[p["TargetId"]]
        secrets = secretsmanager_backends[self.account_id][self.region]
        secret_id = p["SecretId"]
        current = secrets.get_secret_value(secret_id, None, None)  # type: ignore[arg-type]
        value = json.loads(current["SecretString"])
        value.update(
            host=cluster.endpoint,
            port=5432,
            dbname=cluster.database_name,
            engine="postgres",
            dbClusterIdentifier=cluster.db_cluster_identifier,
        )
        secrets.put_secret_value(
            secret_id,
            json.dumps(value),
            None,  # type: ignore[arg-type]
            None,  # type: ignore[arg-type]
            ["AWSCURRENT"],
        )


# --- gaps 5 to 8: CloudFormation's side of custom resources and updates ------------------------


def _custom_created(original: Callable[..., CustomModel]) -> Callable[..., CustomModel]:
    """moto's custom resource create (it sends Create), remembering what Update/Delete need."""

    def create(
        cls: type[CustomModel],
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> CustomModel:
        resource = original(resource_name, cloudformation_json, account_id, region_name, **kwargs)
        resource.emulated = {  # type: ignore[attr-defined]
            "stack_id": kwargs["StackId"],
            "resource_type": kwargs["ResourceType"],
            "account_id": account_id,
            "properties": cloudformation_json["Properties"],
        }
        return resource

    return create


def _send(
    cloud: EmulatedCloud,
    resource: CustomModel,
    request_type: str,
    properties: dict[str, Any],
    old_properties: dict[str, Any] | None = None,
) -> Answer:
    """Send one custom resource request as CloudFormation does, and wait for its answer."""
    details = resource.emulated  # type: ignore[attr-defined]
    stack_id = details["stack_id"]
    request_id = str(uuid.uuid4())
    event: dict[str, Any] = {
        "RequestType": request_type,
        "ServiceToken": properties["ServiceToken"],
        "ResponseURL": f"{cloud.endpoint}/cloudformation_{resource.region_name}/cfnresponse"
        f"?stack={stack_id}",
        "StackId": stack_id,
        "RequestId": request_id,
        "LogicalResourceId": resource.logical_id,
        "PhysicalResourceId": cloud.physical_id(stack_id, resource.logical_id)
        or resource.physical_resource_id,
        "ResourceType": details["resource_type"],
        "ResourceProperties": properties,
    }
    if old_properties is not None:
        event["OldResourceProperties"] = old_properties
    cloud.expect(request_id, request_type)
    backend = lambda_backends[details["account_id"]][resource.region_name]
    function = backend.get_function(properties["ServiceToken"])
    invocation = threading.Thread(
        target=function.invoke, args=(json.dumps(event), {}, {}), daemon=True
    )
    invocation.start()
    answer = cloud.wait_for(request_id)
    # CloudFormation goes on once answered; waiting for the run to end keeps the test's
    # invocation log complete when the stack operation returns.
    invocation.join(timeout=INVOKE_TIMEOUT_SECONDS)
    return answer


def _custom_updated(cloud: EmulatedCloud) -> Callable[..., CustomModel]:
    def update(
        original_resource: CustomModel,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> CustomModel:
        details = original_resource.emulated  # type: ignore[attr-defined]
        new_properties = cloudformation_json["Properties"]
        old_properties = details["properties"]
        stack = cloudformation_backends[account_id][region_name].get_stack(details["stack_id"])
        answer = _send(cloud, original_resource, "Update", new_properties, old_properties)
        if answer.status == "SUCCESS":
            original_resource.data = answer.body.get("Data") or {}
            details["properties"] = new_properties
            return original_resource
        stack._add_stack_event("UPDATE_ROLLBACK_IN_PROGRESS", resource_status_reason=answer.reason)
        rollback = _send(cloud, original_resource, "Update", old_properties, new_properties)
        if rollback.status == "SUCCESS":
            original_resource.data = rollback.body.get("Data") or {}
        stack.emulated_outcome = (  # type: ignore[attr-defined]
            "UPDATE_ROLLBACK_COMPLETE" if rollback.status == "SUCCESS" else "UPDATE_ROLLBACK_FAILED"
        )
        return original_resource

    return update


def _custom_deleted(cloud: EmulatedCloud) -> Callable[[CustomModel, str, str], None]:
    def delete(resource: CustomModel, account_id: str, region_name: str) -> None:
        answer = _send(cloud, resource, "Delete", resource.emulated["properties"])  # type: ignore[attr-defined]
        if answer.status != "SUCCESS":
            raise RuntimeError(f"custom resource Delete failed: {answer.reason}")

    return delete


def _answers_recorded(cloud: EmulatedCloud, original: Callable[..., Any]) -> Callable[..., Any]:
    def process(self: CloudFormationResponse) -> Any:
        body = json.loads(self.body)
        cloud.record(body)
        if cloud.sent_by_us(str(body.get("RequestId"))):
            return 200, {"status": 200}, json.dumps("{}")
        if body.get("Status") == "FAILED":
            stack = self.cloudformation_backend.get_stack(body["StackId"])
            threading.Thread(target=_roll_back_create, args=(stack, body), daemon=True).start()
            return 200, {"status": 200}, json.dumps("{}")
        return original(self)

    return process


class _NoOutputs(dict[str, Any]):
    """A rolled-back stack has no outputs (moto would evaluate them on deleted resources)."""

    exports: list[Any] = []


def _roll_back_create(stack: Stack, body: dict[str, Any]) -> None:
    """What CloudFormation does when a resource fails during the stack's create (gap 6)."""
    stack._add_stack_event("CREATE_FAILED", resource_status_reason=body.get("Reason"))
    stack.status = "ROLLBACK_IN_PROGRESS"
    stack.resource_map.emulated_create_rollback = True  # type: ignore[attr-defined]
    try:
        stack.resource_map.delete()
        stack.output_map = _NoOutputs()  # type: ignore[assignment]
        stack.status = "ROLLBACK_COMPLETE"
    except Exception as exc:
        stack.status = "ROLLBACK_FAILED"
        stack._add_stack_event("ROLLBACK_FAILED", resource_status_reason=str(exc))
    finally:
        stack.resource_map.emulated_create_rollback = False  # type: ignore[attr-defined]
    stack._add_stack_event(stack.status)


def _delete_in_dependency_order(self: Any) -> None:
    """moto's ``ResourceMap.delete`` in reverse dependency order, honouring policies (gaps 7, 9).

    ``RetainExceptOnCreate`` resources are kept by a stack delete and removed when the create
    that made them rolls back.
    """
    rollback = getattr(self, "emulated_create_rollback", False)
    kept = {"Retain"} if rollback else {"Retain", "RetainExceptOnCreate"}
    failures: list[Exception] = []
    for name in reversed(dependency_order(self._resource_json_map)):
        resource_json = self._resource_json_map[name]
        parsed = self._parsed_resources.get(name)
        if resource_json.get("DeletionPolicy") in kept or parsed is None or isinstance(parsed, str):
            continue
        try:
            self._delete_resource(parsed, resource_json)
        except Exception as exc:
            failures.append(exc)
        else:
            self._parsed_resources.pop(name)
    if failures:
        raise failures[0]


def _outcome_applied(original: Callable[..., None]) -> Callable[..., None]:
    def update(self: Stack, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        outcome = getattr(self, "emulated_outcome", None)
        if outcome:
            self.status = outcome
            self._add_stack_event(outcome)
            del self.emulated_outcome  # type: ignore[attr-defined]

    return update


_REFERENCE = re.compile(r"\$\{([A-Za-z0-9]+)(?:\.[A-Za-z0-9.]+)?\}")


def _references(value: Any) -> set[str]:
    """Logical ids ``value`` refers to (Ref, GetAtt, Sub), for the dependency order (gap 8)."""
    if isinstance(value, dict):
        found: set[str] = set()
        for key, item in value.items():
            if key == "Ref" and isinstance(item, str):
                found.add(item)
            elif key == "Fn::GetAtt":
                found.add(item[0] if isinstance(item, list) else str(item).split(".")[0])
            elif key == "Fn::Sub":
                text = item[0] if isinstance(item, list) else item
                found |= set(_REFERENCE.findall(text))
                if isinstance(item, list):
                    found |= _references(item[1])
            else:
                found |= _references(item)
        return found
    if isinstance(value, list):
        return set().union(*(_references(item) for item in value)) if value else set()
    return set()


def dependency_order(resources: dict[str, Any]) -> list[str]:
    """Logical ids so that every resource comes after the ones it refers to or depends on."""
    ordered: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in ordered or name not in resources:
            return
        if name in visiting:
            raise ValueError(f"circular reference through {name}")
        visiting.add(name)
        depends = resources[name].get("DependsOn", [])
        for other in sorted(_references(resources[name]) | set(_as_list(depends))):
            visit(other)
        visiting.discard(name)
        ordered.append(name)

    for name in resources:
        visit(name)
    return ordered


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _update_in_dependency_order(
    self: Any, template: dict[str, Any], parameters: dict[str, Any] | None = None
) -> None:
    """moto's ``ResourceMap.update`` with CloudFormation's order (gap 8)."""
    diff = self.build_resource_diff(template, parameters)
    old_resources = self._resource_json_map
    self._template = template
    if parameters:
        self.input_parameters = parameters
    self.load_mapping()
    self.load_parameters()
    self.load_conditions()
    self._resource_json_map = template["Resources"]
    for name in dependency_order(template["Resources"]):
        if name in diff["Add"]:
            _ = self[name]
        elif name in diff["Modify"]:
            changed = cfn_parsing.parse_and_update_resource(
                name,
                self._resource_json_map[name],
                self,
                account_id=self._account_id,
                region_name=self._region_name,
            )
            if changed is not None:
                self._parsed_resources[name] = changed
    for name in diff["Remove"]:
        resource = self._parsed_resources.pop(name, None)
        policy = old_resources[name].get("DeletionPolicy")
        if resource is not None and policy not in ("Retain", "RetainExceptOnCreate"):
            self._delete_resource(resource, old_resources[name])


@contextmanager
def moto_gaps_shimmed(cloud: EmulatedCloud) -> Iterator[None]:
    """Install every shim for the duration of the block (they patch moto's classes in-process)."""
    with ExitStack() as undo:

        def patch(owner: Any, name: str, value: Any) -> None:
            previous = owner.__dict__.get(name)
            setattr(owner, name, value)
            if previous is None:
                undo.callback(delattr, owner, name)
            else:
                undo.callback(setattr, owner, name, previous)

        def invoke(self: LambdaFunction, body: str, *_headers: Any) -> str:
            payload = json.loads(body) if body else {}
            if isinstance(payload, dict) and "ResponseURL" in payload:
                payload["ResponseURL"] = _reachable(cloud, payload["ResponseURL"])
            return run_function(cloud, self, payload)

        patch(LambdaFunction, "invoke", invoke)
        patch(
            LambdaVersion,
            "create_from_cloudformation_json",
            classmethod(_version_created(LambdaVersion.create_from_cloudformation_json)),
        )
        patch(LambdaVersion, "physical_resource_id", property(lambda self: self.arn))
        patch(LayerVersion, "physical_resource_id", property(lambda self: self.arn))
        patch(LambdaVersion, "has_cfn_attr", classmethod(lambda cls, attr: attr == "Version"))
        patch(LambdaVersion, "get_cfn_attribute", lambda self, attr: str(self.version))
        patch(
            CustomModel,
            "create_from_cloudformation_json",
            classmethod(_custom_created(CustomModel.create_from_cloudformation_json)),
        )
        patch(CustomModel, "update_from_cloudformation_json", staticmethod(_custom_updated(cloud)))
        patch(CustomModel, "delete", _custom_deleted(cloud))
        patch(
            CloudFormationResponse,
            "process_cfn_response",
            _answers_recorded(cloud, CloudFormationResponse.process_cfn_response),
        )
        patch(cfn_parsing.ResourceMap, "delete", _delete_in_dependency_order)
        patch(cfn_parsing.ResourceMap, "update", _update_in_dependency_order)
        patch(Stack, "update", _outcome_applied(Stack.update))
        # moto caches its type -> model map; the models above join it while the shims are on.
        for cache in (cfn_parsing.get_model_list, cfn_parsing.get_model_map):
            cache.cache_clear()
            undo.callback(cache.cache_clear)
        assert cfn_parsing.get_model_map()["AWS::Lambda::Alias"] is _LambdaAlias
        assert cfn_parsing.get_model_map()["AWS::Lambda::Url"] is _LambdaUrl
        assert cfn_parsing.get_model_map()["AWS::Lambda::EventInvokeConfig"] is _EventInvokeConfig
        assert cfn_parsing.get_model_map()["AWS::RDS::DBCluster"] is _RdsCluster
        assert cfn_parsing.get_model_map()["AWS::RDS::DBInstance"] is _AuroraInstance
        yield
