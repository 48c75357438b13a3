"""Gap 9: **stack deletes run in no particular order**.

Upstream, ``ResourceMap.delete`` walks a set of the resource names (retrying those that fail),
so the custom resource's function could be gone before its Delete is sent. Here resources are
deleted in reverse dependency order (gap 8's :func:`dependency_order`), as CloudFormation
deletes, keeping what the ``DeletionPolicy`` says (gap 7).
"""

from __future__ import annotations

from typing import Any

from moto.cloudformation import parsing as cfn_parsing

from tests.support.moto_gaps.cloud import EmulatedCloud, Patch
from tests.support.moto_gaps.gap07_retain_except_on_create import kept_policies
from tests.support.moto_gaps.gap08_update_order import dependency_order


def _delete_in_dependency_order(self: Any) -> None:
    """moto's ``ResourceMap.delete`` in reverse dependency order, honouring policies."""
    kept = kept_policies(self)
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


def install(patch: Patch, cloud: EmulatedCloud) -> None:
    patch(cfn_parsing.ResourceMap, "delete", _delete_in_dependency_order)
