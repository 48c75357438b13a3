"""Post-deploy smoke test: one streamed chat turn, read back; a wrong-audience token refused.

Proves a deploy end to end the way a client uses it: the chat function URL streams a turn
(simple SSE protocol: ``POST /chatkit`` with ``{"message": ...}``, ending in ``data: [DONE]``),
the thread id comes back in ``X-Thread-Id``, and the conversations function URL returns that
conversation with the user's message in it. Then both function URLs must answer 401 to a token
that is valid in every way but its audience (``aud``): a token minted for another app must not
work here. Prints the time to the first byte and to the end of the stream. Exit status 0 only
when everything held.

The wrong-audience token: ``--wrong-audience-token`` (or ``SMOKE_WRONG_AUDIENCE_TOKEN``), else,
with ``--stack`` and an HS256 ``JwtSecretArn``, one minted like the smoke token but for another
audience. A JWKS stack needs one from its identity provider (a token issued to another client);
``--skip-audience-check`` skips the check, and says so.

Where the URLs come from: ``--stack`` reads the stack's outputs (``ChatFunctionUrl``,
``ConversationsFunctionUrl``), or ``--chat-url`` / ``--conversations-url`` name them.
The bearer token: ``--token`` (or ``SMOKE_TOKEN``), else one minted for ``--user`` with the HS256
secret of the stack's ``JwtSecretArn`` parameter (and its ``JwtIssuer`` / ``JwtAudience``).
A stack that verifies RS256 tokens through a JWKS URL needs a token from its identity provider.

    python scripts/smoke.py --stack chatkit-backend-dev --region us-east-1
    python scripts/smoke.py --chat-url http://127.0.0.1:8000/ --conversations-url \\
        http://127.0.0.1:8000/ --token "$TOKEN"
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from typing import Any

SMOKE_USER = "smoke-test"
TOKEN_LIFETIME_SECONDS = 600
TIMEOUT_SECONDS = 180.0
"""The chat function's timeout in ``template.yaml``: waiting longer would be pointless."""


class SmokeFailure(RuntimeError):
    """The deployment did not behave; the message says how."""


WRONG_AUDIENCE = "not-this-backend"
"""The ``aud`` of a minted wrong-audience token."""


@dataclass(frozen=True)
class Target:
    chat_url: str
    conversations_url: str
    token: str
    wrong_audience_token: str | None = None


@dataclass(frozen=True)
class Result:
    thread_id: str
    first_byte_ms: float
    total_ms: float
    events: int


def stack_target(
    stack: str,
    region: str | None,
    token: str | None,
    user: str,
    wrong_audience_token: str | None = None,
) -> Target:
    """URLs from the stack's outputs; the tokens given, or minted with the stack's JWT secret."""
    import boto3

    cloudformation = boto3.client("cloudformation", region_name=region)
    [found] = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in found.get("Outputs", [])}
    parameters = {p["ParameterKey"]: p.get("ParameterValue", "") for p in found["Parameters"]}
    arn = parameters.get("JwtSecretArn", "")
    issuer = parameters.get("JwtIssuer") or None
    secret: str | None = None
    if arn and (token is None or wrong_audience_token is None):
        found = boto3.client("secretsmanager", region_name=region).get_secret_value(SecretId=arn)
        secret = found["SecretString"]
    if token is None:
        if secret is None:
            raise SmokeFailure("the stack has no JwtSecretArn: give --token (or SMOKE_TOKEN)")
        token = mint_token(
            secret, user, issuer=issuer, audience=parameters.get("JwtAudience") or None
        )
    if wrong_audience_token is None and secret is not None:
        wrong_audience_token = mint_token(secret, user, issuer=issuer, audience=WRONG_AUDIENCE)
    return Target(
        outputs["ChatFunctionUrl"], outputs["ConversationsFunctionUrl"], token, wrong_audience_token
    )


def mint_token(secret: str, user: str, *, issuer: str | None, audience: str | None) -> str:
    """A short-lived HS256 token for ``user``, with the claims the functions check."""
    import jwt

    now = int(time.time())
    claims: dict[str, Any] = {"sub": user, "iat": now, "exp": now + TOKEN_LIFETIME_SECONDS}
    if issuer:
        claims["iss"] = issuer
    if audience:
        claims["aud"] = audience
    return str(jwt.encode(claims, secret.strip(), algorithm="HS256"))


def run(target: Target, *, timeout: float = TIMEOUT_SECONDS) -> Result:
    """One streamed turn, then the conversation read back; raises SmokeFailure on any mismatch."""
    marker = f"smoke test {uuid.uuid4().hex[:12]}"
    headers = {
        "Authorization": f"Bearer {target.token}",
        "Content-Type": "application/json",
        "Accept": "text/event-stream",
    }
    request = urllib.request.Request(  # noqa: S310 (the operator's own URL)
        _join(target.chat_url, "chatkit"),
        data=json.dumps({"message": f"Reply briefly. This is a {marker}."}).encode(),
        headers=headers,
        method="POST",
    )
    started = time.perf_counter()
    first_byte: float | None = None
    events: list[str] = []
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            thread_id = response.headers.get("x-thread-id", "")
            for raw in response:
                if first_byte is None:
                    first_byte = time.perf_counter()
                line = raw.decode().rstrip("\r\n")
                if line.startswith("data: "):
                    events.append(line[len("data: ") :])
                    if events[-1] == "[DONE]":
                        break
    except urllib.error.HTTPError as exc:
        raise SmokeFailure(f"chat answered {exc.code}: {_body(exc)}") from None
    except urllib.error.URLError as exc:
        raise SmokeFailure(f"chat unreachable: {exc.reason}") from None
    ended = time.perf_counter()
    if not events or events[-1] != "[DONE]":
        raise SmokeFailure(f"the stream ended without [DONE] after {len(events)} events")
    errors = [e for e in events[:-1] if json.loads(e).get("type") == "error"]
    if errors:
        raise SmokeFailure(f"the turn failed: {errors[0]}")
    if not thread_id:
        raise SmokeFailure("no X-Thread-Id header on the stream")
    _read_back(target, thread_id, marker, timeout)
    assert first_byte is not None
    return Result(
        thread_id=thread_id,
        first_byte_ms=(first_byte - started) * 1000,
        total_ms=(ended - started) * 1000,
        events=len(events) - 1,
    )


def _read_back(target: Target, thread_id: str, marker: str, timeout: float) -> None:
    request = urllib.request.Request(  # noqa: S310
        _join(target.conversations_url, f"api/conversations/{thread_id}"),
        headers={"Authorization": f"Bearer {target.token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            conversation = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise SmokeFailure(f"conversations answered {exc.code}: {_body(exc)}") from None
    messages = conversation.get("messages", [])
    if not any(marker in json.dumps(m) for m in messages if m.get("role") == "user"):
        raise SmokeFailure(f"conversation {thread_id} lacks the message just sent")
    if not any(m.get("role") == "assistant" for m in messages):
        raise SmokeFailure(f"conversation {thread_id} has no assistant answer")


def check_wrong_audience_refused(target: Target, *, timeout: float = TIMEOUT_SECONDS) -> None:
    """Both function URLs answer 401 to the wrong-audience token (a read each, nothing written)."""
    if target.wrong_audience_token is None:
        raise SmokeFailure(
            "no wrong-audience token: give --wrong-audience-token (a token your identity provider "
            "issued for another audience), or --skip-audience-check"
        )
    headers = {"Authorization": f"Bearer {target.wrong_audience_token}"}
    probes = {
        "chat": urllib.request.Request(  # noqa: S310
            _join(target.chat_url, "chatkit"),
            data=json.dumps({"type": "threads.list", "params": {}}).encode(),
            headers={**headers, "Content-Type": "application/json"},
            method="POST",
        ),
        "conversations": urllib.request.Request(  # noqa: S310
            _join(target.conversations_url, "api/conversations"), headers=headers
        ),
    }
    for name, request in probes.items():
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                status = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except urllib.error.URLError as exc:
            raise SmokeFailure(f"{name} unreachable: {exc.reason}") from None
        if status != 401:
            raise SmokeFailure(
                f"{name} answered {status} to a token for another audience (expected 401)"
            )


def _join(base: str, path: str) -> str:
    return base.rstrip("/") + "/" + path


def _body(error: urllib.error.HTTPError) -> str:
    return error.read(500).decode(errors="replace")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", help="read the URLs (and JWT secret) from this stack")
    parser.add_argument("--region", default=None)
    parser.add_argument("--chat-url")
    parser.add_argument("--conversations-url")
    parser.add_argument("--token", default=os.environ.get("SMOKE_TOKEN") or None)
    parser.add_argument(
        "--wrong-audience-token", default=os.environ.get("SMOKE_WRONG_AUDIENCE_TOKEN") or None
    )
    parser.add_argument("--skip-audience-check", action="store_true")
    parser.add_argument("--user", default=SMOKE_USER, help="sub of a minted token")
    parser.add_argument("--timeout", type=float, default=TIMEOUT_SECONDS)
    args = parser.parse_args(argv)
    try:
        if args.stack:
            target = stack_target(
                args.stack, args.region, args.token, args.user, args.wrong_audience_token
            )
        elif args.chat_url and args.conversations_url and args.token:
            target = Target(
                args.chat_url, args.conversations_url, args.token, args.wrong_audience_token
            )
        else:
            parser.error("give --stack, or --chat-url, --conversations-url and --token")
        result = run(target, timeout=args.timeout)
        if not args.skip_audience_check:
            check_wrong_audience_refused(target, timeout=args.timeout)
    except SmokeFailure as exc:
        print(f"smoke test FAILED: {exc}", file=sys.stderr)
        return 1
    print(f"thread {result.thread_id}: {result.events} events")
    print(f"time to first byte: {result.first_byte_ms:.0f} ms")
    print(f"stream complete:    {result.total_ms:.0f} ms")
    if args.skip_audience_check:
        print("wrong audience:     NOT CHECKED (--skip-audience-check)")
    else:
        print("wrong audience:     refused (401) by both function URLs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
