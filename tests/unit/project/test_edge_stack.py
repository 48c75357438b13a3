"""The optional edge stack (``infra/edge.yaml``): what it must hold to stop floods at the edge.

cfn-lint runs on it in ``make lint-template``; this pins the design: WAF rate rules per client IP
(a tighter one for requests without the edge's bearer header), origin access control signing
for Lambda origins, and invoke permissions only for this distribution.
"""

from __future__ import annotations

from typing import Any

import pytest
from cfnlint.decode import cfn_yaml

from tests.support.paths import REPO_ROOT

EDGE = REPO_ROOT / "infra" / "edge.yaml"


@pytest.fixture(scope="module")
def resources() -> dict[str, Any]:
    return dict(cfn_yaml.load(str(EDGE))["Resources"])


def test_waf_blocks_floods_per_ip_tighter_without_a_token(resources: dict[str, Any]) -> None:
    rules = {rule["Name"]: rule for rule in resources["WebAcl"]["Properties"]["Rules"]}
    anonymous = rules["AnonymousFloodPerIp"]["Statement"]["RateBasedStatement"]
    assert anonymous["AggregateKeyType"] == "IP"
    header = anonymous["ScopeDownStatement"]["NotStatement"]["Statement"]
    assert header["SizeConstraintStatement"]["FieldToMatch"]["SingleHeader"] == {
        "Name": "x-chat-authorization"
    }
    assert rules["FloodPerIp"]["Statement"]["RateBasedStatement"]["AggregateKeyType"] == "IP"
    assert all("Block" in rules[name]["Action"] for name in ("AnonymousFloodPerIp", "FloodPerIp"))


def test_cloudfront_signs_for_iam_function_urls(resources: dict[str, Any]) -> None:
    control = resources["FunctionUrlAccess"]["Properties"]["OriginAccessControlConfig"]
    assert control["OriginAccessControlOriginType"] == "lambda"
    assert control["SigningBehavior"] == "always"
    origins = resources["Distribution"]["Properties"]["DistributionConfig"]["Origins"]
    assert {origin["Id"] for origin in origins} == {"chat", "conversations"}
    assert all("OriginAccessControlId" in origin for origin in origins)
    permissions = [
        r["Properties"] for r in resources.values() if r["Type"] == "AWS::Lambda::Permission"
    ]
    assert len(permissions) == 4
    for permission in permissions:
        assert permission["Principal"] == "cloudfront.amazonaws.com"
        assert "distribution/${Distribution}" in permission["SourceArn"]["Fn::Sub"]
