"""Gap 6: **a FAILED answer to Create is ignored** (the stack stays CREATE_IN_PROGRESS forever).

Upstream, moto's response endpoint acts on SUCCESS only. Here a failed create rolls back as
CloudFormation does: a Delete to the custom resource, the other resources deleted per their
``DeletionPolicy`` (gap 7), and the stack ends in ROLLBACK_COMPLETE (ROLLBACK_FAILED when a
delete fails).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from moto.cloudformation.models import Stack
from moto.cloudformation.responses import CloudFormationResponse

from tests.support.moto_gaps.cloud import EmulatedCloud, Patch
from tests.support.moto_gaps.gap05_custom_update_delete import ANSWERED
from tests.support.moto_gaps.gap07_retain_except_on_create import create_rolling_back


def _failures_rolled_back(cloud: EmulatedCloud, original: Callable[..., Any]) -> Callable[..., Any]:
    def process(self: CloudFormationResponse) -> Any:
        body = json.loads(self.body)
        if body.get("Status") != "FAILED" or cloud.sent_by_us(str(body.get("RequestId"))):
            return original(self)
        cloud.record(body)
        stack = self.cloudformation_backend.get_stack(body["StackId"])
        threading.Thread(target=_roll_back_create, args=(stack, body), daemon=True).start()
        return ANSWERED

    return process


class _NoOutputs(dict[str, Any]):
    """A rolled-back stack has no outputs (moto would evaluate them on deleted resources)."""

    exports: list[Any] = []


def _roll_back_create(stack: Stack, body: dict[str, Any]) -> None:
    """What CloudFormation does when a resource fails during the stack's create."""
    stack._add_stack_event("CREATE_FAILED", resource_status_reason=body.get("Reason"))
    stack.status = "ROLLBACK_IN_PROGRESS"
    try:
        with create_rolling_back(stack.resource_map):
            stack.resource_map.delete()
        stack.output_map = _NoOutputs()  # type: ignore[assignment]
        stack.status = "ROLLBACK_COMPLETE"
    except Exception as exc:
        stack.status = "ROLLBACK_FAILED"
        stack._add_stack_event("ROLLBACK_FAILED", resource_status_reason=str(exc))
    stack._add_stack_event(stack.status)


def install(patch: Patch, cloud: EmulatedCloud) -> None:
    """Wraps the response endpoint in place (gap 5's, when installed first)."""
    patch(
        CloudFormationResponse,
        "process_cfn_response",
        _failures_rolled_back(cloud, CloudFormationResponse.process_cfn_response),
    )
