"""Deploy the SAM template onto moto's server mode, the way ``sam deploy`` does it on AWS.

The steps are the real ones where they can be: ``sam package`` (the Makefile's pinned SAM CLI)
zips the code folders and uploads them to moto's S3 through ``AWS_ENDPOINT_URL``; the SAM
transform runs locally (``scripts/sam_transform.py`` with samtranslator, since moto has none);
the stack is created, updated and deleted through moto's CloudFormation API. What moto cannot do
is shimmed in :mod:`tests.support.moto_gaps`, one named gap at a time.

Usage::

    with emulated_aws() as aws:
        deployed = aws.package(aws.template_variant(tmp_path))
        aws.create_stack("chatkit", deployed, parameters)
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from moto.server import ThreadedMotoServer

from tests.support.migration_scripts import migrations_with
from tests.support.moto_gaps import EmulatedCloud, moto_gaps_shimmed
from tests.support.paths import REPO_ROOT

ROOT = REPO_ROOT
REGION = "us-east-1"
ARTIFACTS_BUCKET = "emulated-sam-artifacts"
STACK_TIMEOUT_SECONDS = 180.0
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}
LOG_GROUPS = {
    "ChatLogGroup": "chat",
    "ConversationsLogGroup": "conversations",
    "MigrationLogGroup": "migration",
    "RetentionLogGroup": "retention",
}


def sam_cli_version() -> str:
    """The SAM CLI version the Makefile pins (one place to bump it)."""
    found = re.search(r"^SAM_CLI_VERSION := (\S+)$", (ROOT / "Makefile").read_text(), re.M)
    assert found, "SAM_CLI_VERSION missing from the Makefile"
    return found.group(1)


def sam_tool(*arguments: str) -> list[str]:
    """A command run inside the pinned SAM CLI's own environment (``uv tool run``)."""
    uv = os.environ.get("UV") or shutil.which("uv")  # `uv run` sets UV; the venv's python has no uv
    return [
        *([uv] if uv else ["python3", "-m", "uv"]),
        "tool",
        "run",
        "--from",
        f"aws-sam-cli=={sam_cli_version()}",
        *arguments,
    ]


@dataclass
class EmulatedAws:
    """A running moto server with the shims on, and what deploys onto it need."""

    cloud: EmulatedCloud
    workdir: Path

    @property
    def endpoint(self) -> str:
        return self.cloud.endpoint

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(read_timeout=300, retries={"max_attempts": 1}),
        )

    # --- building what gets deployed ---------------------------------------------------------

    def template_variant(
        self,
        name: str,
        *,
        revisions: tuple[tuple[str, str], ...] = (),
        legacy_log_groups: bool = False,
    ) -> Path:
        """A copy of ``template.yaml`` in its own folder, code folders referenced absolutely.

        ``revisions``: the migration function ships the project's migrations plus these (a new
        release of the code). ``legacy_log_groups``: the log groups as they were before issue 12
        (fixed names, ``DeletionPolicy: Retain``), to show what the retry test catches.
        """
        folder = self.workdir / name
        folder.mkdir()
        text = (ROOT / "template.yaml").read_text()
        text = re.sub(
            r"^(\s+(?:CodeUri|ContentUri): )(\S+)$",
            lambda m: f"{m.group(1)}{self._snapshot(m.group(2))}",
            text,
            flags=re.M,
        )
        if revisions:
            code = folder / "migrate"
            shutil.copytree(
                ROOT / "functions" / "migrate",
                code,
                symlinks=True,
                ignore=shutil.ignore_patterns("__pycache__", "migrations"),
            )
            migrations_with(code / "migrations", *revisions)
            text = text.replace(
                f"CodeUri: {self._snapshot('functions/migrate/')}", f"CodeUri: {code}"
            )
        if legacy_log_groups:
            for logical_id, suffix in LOG_GROUPS.items():
                text = text.replace(
                    f"  {logical_id}:\n    Type: AWS::Logs::LogGroup\n"
                    "    DeletionPolicy: RetainExceptOnCreate\n    UpdateReplacePolicy: Retain\n"
                    "    Properties:\n",
                    f"  {logical_id}:\n    Type: AWS::Logs::LogGroup\n"
                    "    DeletionPolicy: Retain\n    UpdateReplacePolicy: Retain\n"
                    "    Properties:\n"
                    f"      LogGroupName: !Sub /aws/lambda/${{AWS::StackName}}-{suffix}\n",
                )
            assert text.count("LogGroupName:") == len(LOG_GROUPS)
        template = folder / "template.yaml"
        template.write_text(text)
        return template

    def _snapshot(self, folder: str) -> Path:
        """A copy of a code folder taken once per emulated AWS, without bytecode caches.

        Every release packages the same bytes unless a test changes them on purpose: the
        checkout's ``__pycache__`` folders change while the suite runs (other tests import the
        code), which would make each release ship "new" layers by accident.
        """
        source = (ROOT / folder).resolve()
        copy = self.workdir / "sources" / source.relative_to(ROOT)
        if not copy.exists():
            shutil.copytree(
                source, copy, symlinks=False, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
            )
        return copy

    def package(self, template: Path, parameters: dict[str, str]) -> dict[str, Any]:
        """``sam package`` to moto's S3, then the SAM transform: plain CloudFormation JSON."""
        packaged, expanded = template.with_name("packaged.yaml"), template.with_name("cfn.json")
        environment = {**os.environ, **self.cloud.environment, "SAM_CLI_TELEMETRY": "0"}
        self._run(
            sam_tool(
                "sam",
                "package",
                "--template-file",
                str(template),
                "--s3-bucket",
                ARTIFACTS_BUCKET,
                "--output-template-file",
                str(packaged),
                "--region",
                REGION,
            ),
            environment,
        )
        self._run(
            sam_tool(
                "python",
                str(ROOT / "scripts" / "sam_transform.py"),
                str(packaged),
                str(expanded),
                "--parameters",
                json.dumps(parameters),
                "--region",
                REGION,
            ),
            environment,
        )
        result: dict[str, Any] = json.loads(expanded.read_text())
        return result

    @staticmethod
    def _run(command: list[str], environment: dict[str, str]) -> None:
        result = subprocess.run(
            command, env=environment, capture_output=True, text=True, timeout=300, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command[:8])} failed:\n{result.stderr[-4000:]}")

    # --- stack operations --------------------------------------------------------------------

    def create_stack(self, name: str, template: dict[str, Any], parameters: dict[str, str]) -> str:
        self.client("cloudformation").create_stack(
            StackName=name,
            TemplateBody=json.dumps(template),
            Parameters=_parameters(parameters),
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
        )
        return self.wait(name)

    def update_stack(self, name: str, template: dict[str, Any], parameters: dict[str, str]) -> str:
        self.client("cloudformation").update_stack(
            StackName=name,
            TemplateBody=json.dumps(template),
            Parameters=_parameters(parameters),
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
        )
        return self.wait(name)

    def delete_stack(self, name: str) -> str:
        stack_id = self.stack(name)["StackId"]
        self.client("cloudformation").delete_stack(StackName=name)
        return self.wait(stack_id)

    def stack(self, name: str) -> dict[str, Any]:
        [stack] = self.client("cloudformation").describe_stacks(StackName=name)["Stacks"]
        return dict(stack)

    def outputs(self, name: str) -> dict[str, str]:
        return {o["OutputKey"]: o["OutputValue"] for o in self.stack(name).get("Outputs", [])}

    def wait(self, name: str) -> str:
        """The stack's status once it is no longer in progress."""
        deadline = time.monotonic() + STACK_TIMEOUT_SECONDS
        while True:
            status = str(self.stack(name)["StackStatus"])
            if not status.endswith("_IN_PROGRESS"):
                return status
            if time.monotonic() > deadline:
                raise TimeoutError(f"stack {name} still {status}")
            time.sleep(0.2)

    def resource(self, stack: str, logical_id: str) -> str:
        """A resource's physical id."""
        found = self.client("cloudformation").describe_stack_resource(
            StackName=stack, LogicalResourceId=logical_id
        )
        return str(found["StackResourceDetail"]["PhysicalResourceId"])


def _parameters(values: dict[str, str]) -> list[dict[str, str]]:
    return [{"ParameterKey": key, "ParameterValue": value} for key, value in values.items()]


@contextmanager
def emulated_aws(workdir: Path) -> Iterator[EmulatedAws]:
    """moto's server on a free loopback port, with the shims on, and the artifacts bucket."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        cloud = EmulatedCloud(endpoint, {**FAKE_CREDENTIALS, "AWS_ENDPOINT_URL": endpoint})
        with moto_gaps_shimmed(cloud):
            aws = EmulatedAws(cloud, workdir)
            aws.client("s3").create_bucket(Bucket=ARTIFACTS_BUCKET)
            yield aws
    finally:
        server.stop()
