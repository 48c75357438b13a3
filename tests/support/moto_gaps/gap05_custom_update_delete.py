"""Gap 5: **custom resources only ever get Create**.

Upstream, ``CustomModel`` sends the Create request and nothing else: a stack update leaves the
resource alone (its ``update_from_cloudformation_json`` is the abstract default, which moto
skips) and a stack delete removes it without a word to the function. Here Update (with
``OldResourceProperties`` and the physical id the function answered) and Delete are sent, and
the stack waits for each answer. A FAILED Update gets the rollback-shaped Update CloudFormation
sends (old properties, same ServiceToken, the alias still on the new code); the stack then ends
in UPDATE_ROLLBACK_COMPLETE or UPDATE_ROLLBACK_FAILED. Other resources are not rolled back
(moto cannot); the lifecycle test deploys a fixed revision next, as an operator would.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from typing import Any

from moto.awslambda.models import lambda_backends
from moto.cloudformation import cloudformation_backends
from moto.cloudformation.custom_model import CustomModel
from moto.cloudformation.models import Stack
from moto.cloudformation.responses import CloudFormationResponse

from tests.support.moto_gaps.cloud import INVOKE_TIMEOUT_SECONDS, Answer, EmulatedCloud, Patch
from tests.support.moto_gaps.modelling import CreateCall, after_create

ANSWERED = (200, {"status": 200}, json.dumps("{}"))
"""What moto's response endpoint returns to the function."""


def _remember_request(resource: CustomModel, call: CreateCall) -> None:
    """After moto's custom resource create (it sends Create): what Update and Delete need."""
    resource.emulated = {  # type: ignore[attr-defined]
        "stack_id": call.details["StackId"],
        "resource_type": call.details["ResourceType"],
        "account_id": call.account_id,
        "properties": call.properties,
    }


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
    """Every answer is recorded; those to the requests sent here end there."""

    def process(self: CloudFormationResponse) -> Any:
        body = json.loads(self.body)
        cloud.record(body)
        if cloud.sent_by_us(str(body.get("RequestId"))):
            return ANSWERED
        return original(self)

    return process


def _outcome_applied(original: Callable[..., None]) -> Callable[..., None]:
    def update(self: Stack, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        outcome = getattr(self, "emulated_outcome", None)
        if outcome:
            self.status = outcome
            self._add_stack_event(outcome)
            del self.emulated_outcome  # type: ignore[attr-defined]

    return update


def install(patch: Patch, cloud: EmulatedCloud) -> None:
    patch(
        CustomModel,
        "create_from_cloudformation_json",
        after_create(CustomModel.create_from_cloudformation_json, _remember_request),
    )
    patch(CustomModel, "update_from_cloudformation_json", staticmethod(_custom_updated(cloud)))
    patch(CustomModel, "delete", _custom_deleted(cloud))
    patch(
        CloudFormationResponse,
        "process_cfn_response",
        _answers_recorded(cloud, CloudFormationResponse.process_cfn_response),
    )
    patch(Stack, "update", _outcome_applied(Stack.update))
