"""Gap 3: **no CloudFormation model for ``AWS::Lambda::Alias``, ``AWS::Lambda::Url`` and
``AWS::Lambda::EventInvokeConfig``**.

Upstream, moto's CloudFormation has no model for these types (the stack skips them, so nothing
points at the published version, there is no function URL and no retry setting). Here: small
models over moto's own Lambda API, whose function URLs take no qualifier (a URL on an alias is
recorded on the function). They join moto's type -> model map by subclassing
``CloudFormationModel`` (see :data:`MODELS`).
"""

from __future__ import annotations

from typing import Any

from moto.awslambda.models import lambda_backends
from moto.core.common_models import CloudFormationModel

from tests.support.moto_gaps.modelling import FromProperties


class _LambdaAlias(FromProperties, CloudFormationModel):
    """``AWS::Lambda::Alias`` over moto's alias API; ``Ref`` is the alias ARN."""

    resource_type = "AWS::Lambda::Alias"

    def __init__(
        self, resource_name: str, account_id: str, region: str, properties: dict[str, Any]
    ) -> None:
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

    @property
    def physical_resource_id(self) -> str:
        return self.arn

    def updated(
        self, resource_name: str, account_id: str, region: str, properties: dict[str, Any]
    ) -> _LambdaAlias:
        self.version = str(properties["FunctionVersion"])
        lambda_backends[account_id][region].update_alias(
            name=self.name,
            function_name=self.function_name,
            function_version=self.version,
            description="",
            routing_config=None,  # type: ignore[arg-type]
        )
        return self

    def delete(self, account_id: str, region_name: str) -> None:
        lambda_backends[account_id][region_name].delete_alias(self.name, self.function_name)


class _LambdaUrl(FromProperties, CloudFormationModel):
    """``AWS::Lambda::Url`` over moto's function URL API; ``GetAtt FunctionUrl`` works."""

    resource_type = "AWS::Lambda::Url"

    def __init__(
        self, resource_name: str, account_id: str, region: str, properties: dict[str, Any]
    ) -> None:
        self.function = str(properties["TargetFunctionArn"])
        config: dict[str, Any] = {
            key: properties[key] for key in ("AuthType", "InvokeMode", "Cors") if key in properties
        }
        # moto's URL API takes no qualifier; SAM points the URL at the alias (SnapStart)
        unqualified = ":".join(self.function.split(":")[:7])
        backend = lambda_backends[account_id][region]
        self.url = backend.create_function_url_config(unqualified, config).url + "/"

    @property
    def physical_resource_id(self) -> str:
        return self.function

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in ("FunctionUrl", "FunctionArn")

    def get_cfn_attribute(self, attribute_name: str) -> str:
        return self.url if attribute_name == "FunctionUrl" else self.function

    def delete(self, account_id: str, region_name: str) -> None:
        unqualified = ":".join(self.function.split(":")[:7])
        lambda_backends[account_id][region_name].delete_function_url_config(unqualified)


class _EventInvokeConfig(FromProperties, CloudFormationModel):
    """``AWS::Lambda::EventInvokeConfig`` over moto's API, so the test can read the retries back."""

    resource_type = "AWS::Lambda::EventInvokeConfig"

    def __init__(
        self, resource_name: str, account_id: str, region: str, properties: dict[str, Any]
    ) -> None:
        self.function = str(properties["FunctionName"])
        config: dict[str, Any] = {
            key: properties[key]
            for key in ("MaximumRetryAttempts", "MaximumEventAgeInSeconds")
            if key in properties
        }
        lambda_backends[account_id][region].put_function_event_invoke_config(self.function, config)

    @property
    def physical_resource_id(self) -> str:
        return self.function

    def updated(
        self, resource_name: str, account_id: str, region: str, properties: dict[str, Any]
    ) -> _EventInvokeConfig:
        return type(self)(resource_name, account_id, region, properties)

    def delete(self, account_id: str, region_name: str) -> None:
        lambda_backends[account_id][region_name].delete_function_event_invoke_config(self.function)


MODELS: tuple[type[CloudFormationModel], ...] = (_LambdaAlias, _LambdaUrl, _EventInvokeConfig)
