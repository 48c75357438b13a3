"""Gap 4: **``AWS::Lambda::Version``: ``Ref`` gives the logical id and ``GetAtt Version`` fails;
``Ref`` of ``AWS::Lambda::LayerVersion`` gives moto's model object**.

Upstream, neither model has a ``physical_resource_id`` and ``LambdaVersion`` has no
``get_cfn_attribute`` (a stack update then fails inside moto). Here: the ARNs and the version
number, as CloudFormation gives them.
"""

from __future__ import annotations

from moto.awslambda.models import LambdaVersion, LayerVersion, lambda_backends

from tests.support.moto_gaps.cloud import EmulatedCloud, Patch
from tests.support.moto_gaps.modelling import CreateCall, after_create


def _remember_arn(version: LambdaVersion, call: CreateCall) -> None:
    """After moto's version create: the version's ARN, for ``Ref``."""
    function = lambda_backends[call.account_id][call.region].get_function(
        call.properties["FunctionName"]
    )
    version.arn = f"{function.function_arn}:{version.version}"  # type: ignore[attr-defined]


def install(patch: Patch, cloud: EmulatedCloud) -> None:
    patch(
        LambdaVersion,
        "create_from_cloudformation_json",
        after_create(LambdaVersion.create_from_cloudformation_json, _remember_arn),
    )
    patch(LambdaVersion, "physical_resource_id", property(lambda self: self.arn))
    patch(LayerVersion, "physical_resource_id", property(lambda self: self.arn))
    patch(LambdaVersion, "has_cfn_attr", classmethod(lambda cls, attr: attr == "Version"))
    patch(LambdaVersion, "get_cfn_attribute", lambda self, attr: str(self.version))
