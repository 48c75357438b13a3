"""One test per gap in :mod:`tests.support.moto_gaps`: each runs *raw* moto (its server mode, no
shim installed) and asserts the gap is still there.

When an upgraded moto closes a gap, its test fails with "moto now ...: delete gap N" and the
module to remove; the emulated deploy tests then show whether moto's own behaviour is enough.
Where moto would start a Docker container for a function (gap 1), a recorder stands in for the
function, so the custom resource tests see exactly the requests moto sends.
"""

from __future__ import annotations

import io
import json
import logging
import time
import zipfile
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import boto3
import httpx
import pytest
from botocore.config import Config
from moto.awslambda.models import LambdaFunction
from moto.cloudformation import parsing as cfn_parsing
from moto.core.common_models import CloudFormationModel
from moto.server import ThreadedMotoServer

from tests.support.emulated_deploy import FAKE_CREDENTIALS, REGION
from tests.support.moto_gaps import gap03_lambda_models, gap10_database_models

STACK_TIMEOUT_SECONDS = 60.0
DOCKER_SOCKET = "/var/run/docker.sock"
HANDLER_CODE = "def handler(event, context):\n    return {'answer': 42}\n"


def retire(gap: int, module: str, now: str) -> str:
    return f"moto now {now}: delete gap {gap} (tests/support/moto_gaps/{module}.py)"


class RawMoto:
    """moto's server with nothing patched, and the clients and resources the tests share."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        role = self.client("iam").create_role(
            RoleName="gap-retirement",
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
        )
        self.role_arn: str = role["Role"]["Arn"]
        self._stacks = 0

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            config=Config(retries={"max_attempts": 1}),
        )

    def function(self, properties: dict[str, Any] | None = None) -> dict[str, Any]:
        """An ``AWS::Lambda::Function`` resource with inline code and the shared role."""
        return {
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "Runtime": "python3.12",
                "Handler": "index.handler",
                "Role": self.role_arn,
                "Code": {"ZipFile": HANDLER_CODE},
                **(properties or {}),
            },
        }

    def create_stack(self, resources: dict[str, Any], **template: Any) -> str:
        """Create a stack; returns its id."""
        self._stacks += 1
        name = f"gap-retirement-{self._stacks}"
        body = json.dumps({"Resources": resources, **template})
        created = self.client("cloudformation").create_stack(StackName=name, TemplateBody=body)
        return str(created["StackId"])  # a deleted stack is found by its id only

    def update_stack(self, name: str, resources: dict[str, Any], **template: Any) -> None:
        body = json.dumps({"Resources": resources, **template})
        self.client("cloudformation").update_stack(StackName=name, TemplateBody=body)

    def status(self, name: str) -> str:
        stack = self.client("cloudformation").describe_stacks(StackName=name)["Stacks"][0]
        return str(stack["StackStatus"])

    def outputs(self, name: str) -> dict[str, str]:
        stack = self.client("cloudformation").describe_stacks(StackName=name)["Stacks"][0]
        return {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}

    def wait(self, name: str) -> str:
        """The stack's status once it is no longer in progress."""
        deadline = time.monotonic() + STACK_TIMEOUT_SECONDS
        while (status := self.status(name)).endswith("_IN_PROGRESS"):
            assert time.monotonic() < deadline, f"stack {name} still {status}"
            time.sleep(0.1)
        return status

    def answer(self, event: dict[str, Any], status: str) -> None:
        """PUT a custom resource answer to the path moto's ResponseURL names, on the server."""
        url = urlsplit(
            event["ResponseURL"] if "://" in event["ResponseURL"] else "//" + event["ResponseURL"]
        )
        body = {
            "Status": status,
            "Reason": "answered by the retirement test",
            "PhysicalResourceId": "gap-retirement",
            "StackId": event["StackId"],
            "RequestId": event["RequestId"],
            "LogicalResourceId": event["LogicalResourceId"],
            "Data": {},
        }
        response = httpx.put(f"{self.endpoint}{url.path}?{url.query}", json=body, timeout=10)
        assert response.status_code == 200, response.text


@pytest.fixture(scope="module")
def moto() -> Iterator[RawMoto]:
    """A moto server of this module's own; moto's backends are process-wide, so they are reset
    before and after (the deploy tests' servers must not see these stacks, nor these theirs)."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    try:
        httpx.post(f"{endpoint}/moto-api/reset", timeout=10).raise_for_status()
        yield RawMoto(endpoint)
    finally:
        httpx.post(f"{endpoint}/moto-api/reset", timeout=10).raise_for_status()
        server.stop()


@pytest.fixture
def custom_resource_requests(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The events moto sends to functions, recorded instead of run (gap 1: no Docker)."""
    requests: list[dict[str, Any]] = []

    def record(self: LambdaFunction, body: str, *_headers: Any) -> bytes:
        requests.append(json.loads(body))
        return b"{}"

    monkeypatch.setattr(LambdaFunction, "invoke", record)
    return requests


def custom_resource(marker: str) -> dict[str, Any]:
    return {
        "Type": "Custom::Retirement",
        "Properties": {"ServiceToken": {"Fn::GetAtt": ["Handler", "Arn"]}, "Marker": marker},
    }


def wait_for_requests(requests: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    """moto sends custom resource requests from a thread of its own."""
    deadline = time.monotonic() + 10
    while len(requests) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return requests


def models_of_moto(resource_type: str) -> list[type[CloudFormationModel]]:
    """moto's own models for ``resource_type`` (the shims' models are subclasses too)."""
    return [
        model
        for model in cfn_parsing.get_model_list()
        if model.cloudformation_type() == resource_type and model.__module__.startswith("moto.")
    ]


def docker_answers() -> bool:
    """Whether a Docker daemon answers here (moto's Lambda would use it)."""
    transport = httpx.HTTPTransport(uds=DOCKER_SOCKET)
    try:
        with httpx.Client(transport=transport, timeout=2) as client:
            return client.get("http://docker/_ping").status_code == 200
    except httpx.TransportError:
        return False


def test_gap_1_lambda_runs_code_only_in_docker(moto: RawMoto) -> None:
    if docker_answers():
        pytest.skip("a Docker daemon answers here: moto would run the function in it")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("index.py", HANDLER_CODE)
    functions = moto.client("lambda")
    functions.create_function(
        FunctionName="gap-1",
        Runtime="python3.12",
        Handler="index.handler",
        Role=moto.role_arn,
        Code={"ZipFile": archive.getvalue()},
    )
    reply = functions.invoke(FunctionName="gap-1", Payload=b"{}")
    payload = reply["Payload"].read()
    assert reply.get("FunctionError"), retire(
        1,
        "gap01_lambda_without_docker",
        f"runs a function without Docker (it returned {payload!r})",
    )
    assert b"docker" in payload.lower(), payload


def test_gap_2_response_url_names_the_docker_host(
    moto: RawMoto, custom_resource_requests: list[dict[str, Any]]
) -> None:
    moto.create_stack({"Handler": moto.function(), "Resource": custom_resource("gap-2")})
    (create,) = wait_for_requests(custom_resource_requests, 1)
    assert not create["ResponseURL"].startswith(moto.endpoint), retire(
        2, "gap02_response_url", "sends a ResponseURL on its own address"
    )
    assert "host.docker.internal" in create["ResponseURL"], create["ResponseURL"]


@pytest.mark.parametrize(
    "resource_type", [model.cloudformation_type() for model in gap03_lambda_models.MODELS]
)
def test_gap_3_no_model_for_lambda_aliases_urls_and_invoke_configs(resource_type: str) -> None:
    assert not models_of_moto(resource_type), retire(
        3, "gap03_lambda_models", f"models {resource_type} (drop that model from the module)"
    )


def test_gap_4_version_and_layer_refs_are_not_arns(moto: RawMoto) -> None:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("python/gap4.py", "")
    moto.client("s3").create_bucket(Bucket="gap-4")
    moto.client("s3").put_object(Bucket="gap-4", Key="layer.zip", Body=archive.getvalue())
    resources = {
        "Handler": moto.function(),
        "Version": {
            "Type": "AWS::Lambda::Version",
            "Properties": {"FunctionName": {"Ref": "Handler"}},
        },
        "Layer": {
            "Type": "AWS::Lambda::LayerVersion",
            "Properties": {"Content": {"S3Bucket": "gap-4", "S3Key": "layer.zip"}},
        },
    }
    outputs = {
        "VersionRef": {"Value": {"Ref": "Version"}},
        "LayerRef": {"Value": {"Ref": "Layer"}},
    }
    stack = moto.create_stack(resources, Outputs=outputs)
    assert moto.wait(stack) == "CREATE_COMPLETE"
    refs = moto.outputs(stack)
    assert not refs["VersionRef"].startswith("arn:"), retire(
        4, "gap04_version_refs", f"gives a version's ARN for Ref ({refs['VersionRef']})"
    )
    assert not refs["LayerRef"].startswith("arn:"), retire(
        4, "gap04_version_refs", f"gives a layer version's ARN for Ref ({refs['LayerRef']})"
    )
    numbered = moto.create_stack(
        resources, Outputs={"Number": {"Value": {"Fn::GetAtt": ["Version", "Version"]}}}
    )
    moto.wait(numbered)
    number = moto.outputs(numbered).get("Number")
    assert number != "1", retire(4, "gap04_version_refs", "answers GetAtt Version")


def test_gap_5_custom_resources_get_create_only(
    moto: RawMoto, custom_resource_requests: list[dict[str, Any]]
) -> None:
    handler = moto.function()
    stack = moto.create_stack({"Handler": handler, "Resource": custom_resource("gap-5")})
    (create,) = wait_for_requests(custom_resource_requests, 1)
    moto.answer(create, "SUCCESS")
    assert moto.wait(stack) == "CREATE_COMPLETE"
    moto.update_stack(stack, {"Handler": handler, "Resource": custom_resource("gap-5, v2")})
    assert moto.wait(stack) == "UPDATE_COMPLETE"
    moto.client("cloudformation").delete_stack(StackName=stack)
    assert moto.wait(stack) == "DELETE_COMPLETE"
    sent = [request["RequestType"] for request in wait_for_requests(custom_resource_requests, 3)]
    assert sent == ["Create"], retire(
        5, "gap05_custom_update_delete", f"sends custom resources {sent}"
    )


def test_gap_6_a_failed_create_answer_is_ignored(
    moto: RawMoto, custom_resource_requests: list[dict[str, Any]]
) -> None:
    stack = moto.create_stack({"Handler": moto.function(), "Resource": custom_resource("gap-6")})
    (create,) = wait_for_requests(custom_resource_requests, 1)
    moto.answer(create, "FAILED")
    time.sleep(1)
    assert moto.status(stack) == "CREATE_IN_PROGRESS", retire(
        6, "gap06_failed_create", f"acts on a FAILED answer (the stack is {moto.status(stack)})"
    )


def test_gap_7_retain_except_on_create_is_deleted_with_the_stack(moto: RawMoto) -> None:
    parameter = {
        "Type": "AWS::SSM::Parameter",
        "DeletionPolicy": "RetainExceptOnCreate",
        "Properties": {"Name": "/gap-7/kept", "Type": "String", "Value": "kept"},
    }
    stack = moto.create_stack({"Kept": parameter})
    assert moto.wait(stack) == "CREATE_COMPLETE"
    moto.client("cloudformation").delete_stack(StackName=stack)
    assert moto.wait(stack) == "DELETE_COMPLETE"
    left = moto.client("ssm").get_parameters(Names=["/gap-7/kept"])["Parameters"]
    assert not left, retire(
        7, "gap07_retain_except_on_create", "keeps RetainExceptOnCreate resources"
    )


def test_gap_8_updates_ignore_dependencies(moto: RawMoto) -> None:
    """A new version of a changed function: CloudFormation publishes it after the change."""
    stage = lambda value: {"Environment": {"Variables": {"STAGE": value}}}  # noqa: E731
    stack = moto.create_stack({"Handler": moto.function(stage("old"))})
    assert moto.wait(stack) == "CREATE_COMPLETE"
    version = {"Type": "AWS::Lambda::Version", "Properties": {"FunctionName": {"Ref": "Handler"}}}
    moto.update_stack(stack, {"Version": version, "Handler": moto.function(stage("new"))})
    assert moto.wait(stack) == "UPDATE_COMPLETE"
    name = moto.client("cloudformation").describe_stack_resource(
        StackName=stack, LogicalResourceId="Handler"
    )["StackResourceDetail"]["PhysicalResourceId"]
    published = moto.client("lambda").get_function_configuration(FunctionName=name, Qualifier="1")
    assert published["Environment"]["Variables"]["STAGE"] == "old", retire(
        8, "gap08_update_order", "applies an update in dependency order"
    )


def test_gap_9_deletes_ignore_dependencies(moto: RawMoto, monkeypatch: pytest.MonkeyPatch) -> None:
    """A chain of parameters, each naming the one before: CloudFormation deletes it from the end."""
    chain = [f"Link{index}" for index in range(10)]
    resources: dict[str, Any] = {}
    for index, name in enumerate(chain):
        value: Any = {"Ref": chain[index - 1]} if index else "first"
        resources[name] = {
            "Type": "AWS::SSM::Parameter",
            "Properties": {"Name": f"/gap-9/{name}", "Type": "String", "Value": value},
        }
    stack = moto.create_stack(resources)
    assert moto.wait(stack) == "CREATE_COMPLETE"
    deleted: list[str] = []
    delete_resource = cfn_parsing.ResourceMap._delete_resource

    def observed(self: Any, resource: Any, resource_json: dict[str, Any]) -> None:
        deleted.append(resource.logical_resource_id)
        delete_resource(self, resource, resource_json)

    monkeypatch.setattr(cfn_parsing.ResourceMap, "_delete_resource", observed)
    moto.client("cloudformation").delete_stack(StackName=stack)
    assert moto.wait(stack) == "DELETE_COMPLETE"
    assert sorted(deleted) == sorted(chain)
    assert deleted != chain[::-1], retire(
        9, "gap09_delete_order", "deletes in reverse dependency order"
    )


@pytest.mark.parametrize(
    "resource_type",
    [
        model.cloudformation_type()
        for model in gap10_database_models.MODELS
        if model.cloudformation_type() != "AWS::RDS::DBInstance"
    ],
)
def test_gap_10_no_model_for_the_database_stacks_resources(resource_type: str) -> None:
    assert not models_of_moto(resource_type), retire(
        10, "gap10_database_models", f"models {resource_type} (drop that model from the module)"
    )


def test_gap_10_no_aurora_instances() -> None:
    (instance_model,) = models_of_moto("AWS::RDS::DBInstance")
    properties = {
        "Engine": "aurora-postgresql",
        "DBInstanceClass": "db.serverless",
        "DBClusterIdentifier": "gap-10",
    }
    unknown_engine: KeyError | None = None
    try:
        instance_model.create_from_cloudformation_json(
            "Gap10Instance", {"Properties": properties}, "123456789012", REGION
        )
    except KeyError as refused:
        unknown_engine = refused
    assert unknown_engine is not None, retire(
        10, "gap10_database_models", "creates aurora-postgresql instances (drop that model)"
    )
    assert "aurora-postgresql" in str(unknown_engine)
