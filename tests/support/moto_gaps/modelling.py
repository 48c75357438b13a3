"""Plumbing the gaps' CloudFormation models and create hooks share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Self, TypeVar

Resource = TypeVar("Resource")


class FromProperties:
    """Mixin: a model of :attr:`resource_type` built from its resource's name and ``Properties``
    alone; an update goes to :meth:`updated`.

    Not a ``CloudFormationModel`` itself: moto finds models among that class's *direct*
    subclasses, so each model names both.
    """

    resource_type: ClassVar[str]

    def __init__(
        self, resource_name: str, account_id: str, region: str, properties: dict[str, Any]
    ) -> None:
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
        return cls(
            resource_name, account_id, region_name, cloudformation_json.get("Properties", {})
        )

    @classmethod
    def cloudformation_type(cls) -> str:
        return cls.resource_type

    @classmethod
    def update_from_cloudformation_json(
        cls,
        original_resource: Self,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> Self:
        properties = cloudformation_json.get("Properties", {})
        return original_resource.updated(new_resource_name, account_id, region_name, properties)

    def updated(
        self, resource_name: str, account_id: str, region: str, properties: dict[str, Any]
    ) -> Self:
        """The resource once the template changed its properties (by default: unchanged)."""
        return self


@dataclass(frozen=True)
class CreateCall:
    """What moto passed to a model's ``create_from_cloudformation_json``."""

    properties: dict[str, Any]
    account_id: str
    region: str
    details: dict[str, Any]
    """The keyword arguments: ``LogicalId``, ``StackId``, ``ResourceType``."""


def after_create(
    original: Callable[..., Resource], hook: Callable[[Resource, CreateCall], None]
) -> Any:
    """moto's ``create_from_cloudformation_json`` (``original``, bound), then ``hook`` on what it
    made: a classmethod to patch in its place."""

    def create(
        cls: type[Any],
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> Resource:
        resource = original(resource_name, cloudformation_json, account_id, region_name, **kwargs)
        properties = cloudformation_json.get("Properties", {})
        hook(resource, CreateCall(properties, account_id, region_name, kwargs))
        return resource

    return classmethod(create)
