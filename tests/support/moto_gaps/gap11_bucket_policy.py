"""Gap 11: **no model for ``AWS::S3::BucketPolicy``** (the attachments bucket's TLS-only policy).

Upstream, moto's CloudFormation warns that it cannot parse the resource and leaves it out, and
then describing the stack's resources fails inside moto (a 500). Here: a model over moto's own
``put_bucket_policy`` (:data:`MODELS`), so the deployed bucket carries the policy the template
gives it and the lifecycle test can read it back.
"""

from __future__ import annotations

import json
from typing import Any

from moto.core.common_models import CloudFormationModel
from moto.s3.models import s3_backends

from tests.support.moto_gaps.modelling import FromProperties


class _BucketPolicy(FromProperties, CloudFormationModel):
    """``AWS::S3::BucketPolicy`` over moto's ``put_bucket_policy`` (physical id: the bucket)."""

    resource_type = "AWS::S3::BucketPolicy"

    def __init__(
        self, resource_name: str, account_id: str, region: str, properties: dict[str, Any]
    ) -> None:
        self.bucket = str(properties["Bucket"])
        document = json.dumps(properties["PolicyDocument"]).encode()
        s3_backends[account_id]["aws"].put_bucket_policy(self.bucket, document)

    @property
    def physical_resource_id(self) -> str:
        return self.bucket


MODELS: tuple[type[CloudFormationModel], ...] = (_BucketPolicy,)
