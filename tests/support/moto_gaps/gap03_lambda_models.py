"""Gap 3: **no CloudFormation model for ``AWS::Lambda::Alias``, ``AWS::Lambda::Url`` and
``AWS::Lambda::EventInvokeConfig``**.

Upstream, moto's CloudFormation has no model for these types (the stack skips them, so nothing
points at the published version, there is no function URL and no retry setting). Here: small
models over moto's own Lambda API, whose function URLs take no qualifier (a URL on an alias is
recorded on the function). They join moto's type -> model map by subclassing
``CloudFormationModel`` (see :data:`MODELS`).
"""

from __future__ import annotations

from typing import Any, Self

from moto.awslambda.models import lambda_backends
from moto.core.common_models import CloudFormationModel


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


MODELS: tuple[type[CloudFormationModel], ...] = (_LambdaAlias, _LambdaUrl, _EventInvokeConfig)
