"""Gap 2: **the custom resource's ResponseURL names ``host.docker.internal``**.

Upstream, moto builds the pre-signed response URL from ``settings.moto_server_host()`` (the
Docker host, since it assumes the function runs in a container), without a scheme. Here the
URL in every event a function gets is rewritten to the server's own loopback address. It is no
pre-signed S3 URL either, which the migration answers exclusively: gap 1's runner gives the
emulated function ``CUSTOM_RESOURCE_LOOPBACK_RESPONSES=true`` (loopback only, never in Lambda).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from moto.awslambda.models import LambdaFunction

from tests.support.moto_gaps.cloud import EmulatedCloud, Patch


def reachable(cloud: EmulatedCloud, url: str) -> str:
    """moto's ResponseURL with its Docker host replaced by the server's own address."""
    parts, server = urlsplit(url if "://" in url else f"http://{url}"), urlsplit(cloud.endpoint)
    return urlunsplit((server.scheme, server.netloc, parts.path, parts.query, ""))


def install(patch: Patch, cloud: EmulatedCloud) -> None:
    """Wraps the invoke in place (gap 1's, when installed first)."""
    invoke_as_before = LambdaFunction.invoke

    def invoke(self: LambdaFunction, body: str, *headers: Any) -> Any:
        payload = json.loads(body) if body else {}
        if isinstance(payload, dict) and "ResponseURL" in payload:
            payload["ResponseURL"] = reachable(cloud, payload["ResponseURL"])
            body = json.dumps(payload)
        return invoke_as_before(self, body, *headers)

    patch(LambdaFunction, "invoke", invoke)
