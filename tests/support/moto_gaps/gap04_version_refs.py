"""Gap 4: **``AWS::Lambda::Version``: ``Ref`` gives the logical id and ``GetAtt Version`` fails;
``Ref`` of ``AWS::Lambda::LayerVersion`` gives moto's model object**.

Upstream, neither model has a ``physical_resource_id`` and ``LambdaVersion`` has no
``get_cfn_attribute`` (a stack update then fails inside moto). Here: the ARNs and the version
number, as CloudFormation gives them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from moto.awslambda.models import LambdaVersion, LayerVersion, lambda_backends

from tests.support.moto_gaps.cloud import EmulatedCloud, Patch


def _version_created(original: Callable[..., LambdaVersion]) -> Callable[..., LambdaVersion]:
    """moto's version create, remembering the version's ARN for ``Ref``."""

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


def install(patch: Patch, cloud: EmulatedCloud) -> None:
    patch(
        LambdaVersion,
        "create_from_cloudformation_json",
        classmethod(_version_created(LambdaVersion.create_from_cloudformation_json)),
    )
    patch(LambdaVersion, "physical_resource_id", property(lambda self: self.arn))
    patch(LayerVersion, "physical_resource_id", property(lambda self: self.arn))
    patch(LambdaVersion, "has_cfn_attr", classmethod(lambda cls, attr: attr == "Version"))
    patch(LambdaVersion, "get_cfn_attribute", lambda self, attr: str(self.version))
