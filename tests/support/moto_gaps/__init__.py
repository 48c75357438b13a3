"""Shims for what moto's server mode lacks, so the packaged template runs its whole lifecycle on it.

One module per moto gap, numbered in the order they are installed; each module's docstring names
the gap and what moto does upstream, and ``tests/e2e/deploy/test_moto_gap_retirement.py`` has one
test per gap that runs raw moto and fails, naming the module to delete, once an upgraded moto no
longer has it. None of the shims changes what the project's code does: the migration function
runs from the zip ``sam package`` uploaded to moto's S3 (plus its layers), with the environment
the template gave it, reads its secret from moto's Secrets Manager, and answers through the
pre-signed URL moto handed out. What is shimmed is CloudFormation's and Lambda's side:

1. :mod:`.gap01_lambda_without_docker`: Lambda runs code only in Docker;
2. :mod:`.gap02_response_url`: the custom resource's ResponseURL names the Docker host;
3. :mod:`.gap03_lambda_models`: no model for Lambda aliases, function URLs, invoke configs;
4. :mod:`.gap04_version_refs`: ``Ref``/``GetAtt`` of Lambda versions and layer versions;
5. :mod:`.gap05_custom_update_delete`: custom resources only ever get Create;
6. :mod:`.gap06_failed_create`: a FAILED answer to Create is ignored;
7. :mod:`.gap07_retain_except_on_create`: ``RetainExceptOnCreate`` is unknown;
8. :mod:`.gap08_update_order`: updates ignore dependencies;
9. :mod:`.gap09_delete_order`: deletes run in no particular order;
10. :mod:`.gap10_database_models`: no models for the companion database stack's resources.

Not shimmed: moto creates resources that ``DependsOn`` a custom resource without waiting for its
answer, so the lifecycle test checks ordering-sensitive outcomes only after the stack settles.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from moto.cloudformation import parsing as cfn_parsing

from tests.support.moto_gaps import (
    gap01_lambda_without_docker,
    gap02_response_url,
    gap03_lambda_models,
    gap04_version_refs,
    gap05_custom_update_delete,
    gap06_failed_create,
    gap08_update_order,
    gap09_delete_order,
    gap10_database_models,
)
from tests.support.moto_gaps.cloud import Answer, EmulatedCloud, Invocation

__all__ = ["Answer", "EmulatedCloud", "Invocation", "moto_gaps_shimmed"]

PATCHES = (
    gap01_lambda_without_docker,
    gap02_response_url,
    gap04_version_refs,
    gap05_custom_update_delete,
    gap06_failed_create,
    gap08_update_order,
    gap09_delete_order,
)
"""The gaps that patch moto's classes, in the order they install (gap 2 wraps gap 1's invoke,
gap 6 gap 5's response endpoint). Gap 7 is a policy gaps 8 and 9 apply."""
MODELS = (*gap03_lambda_models.MODELS, *gap10_database_models.MODELS)
"""The gaps that add CloudFormation models: moto finds them among its model class's subclasses."""


@contextmanager
def moto_gaps_shimmed(cloud: EmulatedCloud) -> Iterator[None]:
    """Install every shim for the duration of the block (they patch moto's classes in-process)."""
    with ExitStack() as undo:

        def patch(owner: Any, name: str, value: Any) -> None:
            previous = owner.__dict__.get(name)
            setattr(owner, name, value)
            if previous is None:
                undo.callback(delattr, owner, name)
            else:
                undo.callback(setattr, owner, name, previous)

        for gap in PATCHES:
            gap.install(patch, cloud)
        # moto caches its type -> model map; the models above join it while the shims are on.
        for cache in (cfn_parsing.get_model_list, cfn_parsing.get_model_map):
            cache.cache_clear()
            undo.callback(cache.cache_clear)
        for model in MODELS:
            assert cfn_parsing.get_model_map()[model.cloudformation_type()] is model
        yield
