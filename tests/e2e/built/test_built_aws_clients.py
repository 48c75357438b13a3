"""The AWS services the shipped code calls work from the built layer, whose botocore keeps the
models of those services only (``BOTOCORE_SERVICES`` in ``layers/Makefile``).

The project's own code runs in the empty Python 3.12 with the chat function's import path,
against moto's server over HTTP: the S3 attachment storage (presigned upload, size, read, move,
delete) and a secret read through Powertools ``parameters``. A service the code calls whose
model the build dropped fails here with ``UnknownServiceError``; a model kept for nothing shows
up as a service no call needs.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import boto3
import pytest
from moto.server import ThreadedMotoServer

from tests.support.built_artifacts import BuiltFunction, Runtime
from tests.support.emulated_deploy import FAKE_CREDENTIALS, REGION

pytestmark = pytest.mark.built

BUCKET = "built-attachments"
SECRET = "built/secret"

PROBE = """
import asyncio, json, sys
import botocore.session
from chatkit_backend.attachments.s3 import S3Storage
from chatkit_backend.secrets import get_secret_value

async def main(bucket, secret_arn):
    storage = S3Storage(bucket, upload_seconds=60, preview_seconds=60)
    target = storage.upload_target("u/a/in.txt", "text/plain", 5)
    import urllib.request
    put = urllib.request.Request(target.url, data=b"hello", method="PUT", headers=target.headers)
    urllib.request.urlopen(put).close()
    size = await storage.size("u/a/in.txt")
    await storage.move("u/a/in.txt", "u/a/kept.txt")
    body = await storage.read("u/a/kept.txt")
    await storage.delete(["u/a/kept.txt"])
    gone = await storage.size("u/a/kept.txt")
    return {"size": size, "body": body.decode(), "gone": gone,
            "secret": get_secret_value(secret_arn),
            "models": sorted(botocore.session.get_session().get_available_services())}

print(json.dumps(asyncio.run(main(*sys.argv[1:]))))
"""


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def test_the_kept_service_models_serve_every_call_the_code_makes(
    runtime: Runtime, functions: dict[str, BuiltFunction], moto_endpoint: str
) -> None:
    aws = {**FAKE_CREDENTIALS, "AWS_ENDPOINT_URL": moto_endpoint}
    clients = boto3.Session(region_name=REGION)
    clients.client("s3", endpoint_url=moto_endpoint, **_keys()).create_bucket(Bucket=BUCKET)
    arn = clients.client("secretsmanager", endpoint_url=moto_endpoint, **_keys()).create_secret(
        Name=SECRET, SecretString="s3cr3t-value"
    )["ARN"]
    chat = functions["ChatFunction"]
    probe = subprocess.run(
        [str(runtime.python), "-s", "-c", PROBE, BUCKET, arn],
        capture_output=True,
        text=True,
        env=runtime.environment(chat, **aws),
        cwd=chat.code_dir,
        timeout=120,
        check=False,
    )
    assert probe.returncode == 0, probe.stderr[-3000:]
    answer = json.loads(probe.stdout)
    assert (answer["size"], answer["body"], answer["gone"]) == (5, "hello", None)
    assert answer["secret"] == "s3cr3t-value"
    assert answer["models"] == ["s3", "secretsmanager", "sts"]


def _keys() -> dict[str, str]:
    return {
        "aws_access_key_id": FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    }
