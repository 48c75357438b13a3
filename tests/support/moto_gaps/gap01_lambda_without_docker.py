"""Gap 1: **Lambda runs code only in Docker** (absent here).

Upstream, ``LambdaFunction.invoke`` starts the function's runtime image in a Docker container.
Here :func:`run_function` runs the deployed zip in a subprocess with the function's
environment (``lambda_bootstrap.py`` stands in for the runtime). The packaged layer is the source
folder (``sam build``'s makefile step is not part of the emulated deploy), so third-party
dependencies come from this interpreter's site-packages, after the zip's own code on the path.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import sysconfig
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from moto.awslambda.models import LambdaFunction, lambda_backends

from tests.support.moto_gaps.cloud import INVOKE_TIMEOUT_SECONDS, EmulatedCloud, Invocation, Patch

BOOTSTRAP = Path(__file__).parent.with_name("lambda_bootstrap.py")


def run_function(cloud: EmulatedCloud, function: LambdaFunction, payload: dict[str, Any]) -> str:
    """Run ``function``'s deployed zip and layers on ``payload`` in a subprocess; its output."""
    backend = lambda_backends[function.account_id][function.region]
    with tempfile.TemporaryDirectory(prefix="emulated-lambda-") as scratch:
        task, opt = Path(scratch, "task"), Path(scratch, "opt")
        zipfile.ZipFile(io.BytesIO(function.code_bytes)).extractall(task)
        for layer in function.layers:
            version = backend.layers_versions_by_arn(layer["Arn"])
            assert version is not None, f"layer {layer['Arn']} is not deployed"
            zipfile.ZipFile(io.BytesIO(version.code_bytes)).extractall(opt)
        dependencies = str(sysconfig.get_paths()["purelib"])
        environment = {
            "PATH": "/usr/bin:/bin",
            **{key: str(value) for key, value in function.environment_vars.items()},
            **cloud.environment,
            "AWS_LAMBDA_FUNCTION_NAME": function.function_name,
            "AWS_LAMBDA_FUNCTION_VERSION": str(function.version),
            # gap 2: moto's ResponseURL is loopback, not a pre-signed S3 URL the migration answers
            "CUSTOM_RESOURCE_LOOPBACK_RESPONSES": "true",
            "PYTHONPATH": ":".join([str(task), str(opt / "python"), str(opt), dependencies]),
        }
        result = subprocess.run(
            [sys.executable, "-P", str(BOOTSTRAP), str(function.handler), str(function.timeout)],
            input=json.dumps(payload),
            capture_output=True,
            text=True,
            cwd=task,
            env=environment,
            timeout=INVOKE_TIMEOUT_SECONDS,
            check=False,
        )
    cloud.invocations.append(
        Invocation(
            function.function_name,
            str(function.version),
            result.returncode,
            result.stdout,
            result.stderr,
        )
    )
    return result.stdout


def install(patch: Patch, cloud: EmulatedCloud) -> None:
    def invoke(self: LambdaFunction, body: str, *_headers: Any) -> str:
        return run_function(cloud, self, json.loads(body) if body else {})

    patch(LambdaFunction, "invoke", invoke)
