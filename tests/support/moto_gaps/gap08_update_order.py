"""Gap 8: **stack updates apply new and changed resources in template order, ignoring ``Ref``
dependencies**.

Upstream, ``ResourceMap.update`` walks the template's resources in the order they are written
(a new Lambda version would be published before the function got its new code). Here they are
applied in dependency order (:func:`dependency_order`: ``Ref``, ``GetAtt``, ``Sub`` and
``DependsOn``); resources the new template dropped are removed afterwards (as CloudFormation's
cleanup does), honouring ``DeletionPolicy`` (gap 7).
"""

from __future__ import annotations

import re
from typing import Any

from moto.cloudformation import parsing as cfn_parsing

from tests.support.moto_gaps.cloud import EmulatedCloud, Patch
from tests.support.moto_gaps.gap07_retain_except_on_create import KEPT

_REFERENCE = re.compile(r"\$\{([A-Za-z0-9]+)(?:\.[A-Za-z0-9.]+)?\}")


def _references(value: Any) -> set[str]:
    """Logical ids ``value`` refers to (Ref, GetAtt, Sub), for the dependency order."""
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
    """moto's ``ResourceMap.update`` in dependency order."""
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
        if resource is not None and policy not in KEPT:
            self._delete_resource(resource, old_resources[name])


def install(patch: Patch, cloud: EmulatedCloud) -> None:
    patch(cfn_parsing.ResourceMap, "update", _update_in_dependency_order)
