"""The deploy-time migration job as a CloudFormation custom resource (and as a plain invoke).

CloudFormation waits up to an hour for an answer PUT to the pre-signed ``ResponseURL``, so
:func:`handle` answers exactly once on every path: Create/Update migrate (under the advisory lock
of :mod:`migration_runner`) and answer SUCCESS with the revision or FAILED with a reason; Delete
never touches the schema; a rollback-shaped Update (:func:`rollback_shaped`: its
``FunctionVersion`` is not the running version) answers SUCCESS without migrating, since
migrating there would re-run the revision that just failed and wedge the rollback; a watchdog
answers FAILED before the Lambda timeout. Nothing migrates downwards. The ``ResponseURL`` is
never logged. ``{"action": "upgrade"}`` as a plain invoke runs the same migration.

Only a pre-signed S3 URL is answered (:func:`response_url_allowed`: ``https``, an S3 host, a
signature in the query): a request naming any other host is refused before anything runs, so a
forged invocation can neither trigger the migrations nor make this function send a request
where it says. ``CUSTOM_RESOURCE_LOOPBACK_RESPONSES=true`` also admits ``http://127.0.0.1``
(the emulated deploy and the tests); inside Lambda it is ignored.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any, Literal, Protocol
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.exc import DBAPIError

logger = logging.getLogger(__name__)

PHYSICAL_RESOURCE_ID = "chatkit-database-schema"
TIMEOUT_MARGIN_SECONDS = 20.0
"""Answer FAILED this long before the Lambda timeout: enough for the PUT and its retries."""
RESPONSE_TIMEOUT_SECONDS = 5.0
RESPONSE_ATTEMPTS = 3
REASON_MAX_CHARS = 1000
"""The whole response must stay under CloudFormation's size limit for a custom resource answer."""

Status = Literal["SUCCESS", "FAILED"]

S3_HOST = re.compile(
    r"^(?:[a-z0-9][a-z0-9.-]*\.)?s3(?:[.-](?:dualstack\.)?[a-z0-9-]+)?\.amazonaws\.com(?:\.cn)?$"
)
"""S3 endpoints, virtual-hosted or path style, any region (the pre-signed ResponseURL's host)."""
SIGNATURE_PARAMETERS = ("X-Amz-Signature", "Signature")
"""Signature Version 4 or 2 query parameters: an unsigned URL is not CloudFormation's."""
LOOPBACK_FLAG = "CUSTOM_RESOURCE_LOOPBACK_RESPONSES"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost")


def response_url_allowed(url: str) -> bool:
    """True for a pre-signed S3 URL (or, with :data:`LOOPBACK_FLAG` outside Lambda, loopback)."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
    except ValueError:
        return False
    if parts.username is not None or parts.password is not None:
        return False
    if parts.scheme == "https" and S3_HOST.match(host):
        query = parse_qs(parts.query)
        return any(query.get(name) for name in SIGNATURE_PARAMETERS)
    loopback_allowed = os.environ.get(LOOPBACK_FLAG, "").lower() == "true" and not os.environ.get(
        "AWS_LAMBDA_RUNTIME_API"
    )
    return loopback_allowed and parts.scheme in ("http", "https") and host in LOOPBACK_HOSTS


class CustomResourceRequest(BaseModel):
    """The fields of a CloudFormation custom resource request this handler uses."""

    model_config = ConfigDict(extra="ignore")

    RequestType: Literal["Create", "Update", "Delete"]
    ResponseURL: str
    StackId: str
    RequestId: str
    LogicalResourceId: str
    PhysicalResourceId: str | None = None
    ResourceProperties: dict[str, Any] = Field(default_factory=dict)
    OldResourceProperties: dict[str, Any] | None = None


class CustomResourceResponse(BaseModel):
    """The JSON document CloudFormation expects at the ``ResponseURL``."""

    Status: Status
    Reason: str
    PhysicalResourceId: str
    StackId: str
    RequestId: str
    LogicalResourceId: str
    NoEcho: bool = False
    Data: dict[str, str] = Field(default_factory=dict)


class PlainInvocation(BaseModel):
    """An operator's direct invoke: ``{"action": "upgrade"}``."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["upgrade"]


class LambdaContextLike(Protocol):
    """The one method of the Lambda context the watchdog needs.

    (The real context also has ``function_version``, read with ``getattr``: see
    :func:`running_version`.)
    """

    def get_remaining_time_in_millis(self) -> int: ...


RunMigrations = Callable[[], str]
"""Runs the migrations to head and returns the revision now current."""
ReadRevision = Callable[[], str | None]
"""Reads the database's current revision without changing anything."""
VERSION_PROPERTY = "FunctionVersion"
"""The custom resource property that carries the migration function version it was made for."""
UNKNOWN_REVISION = "unknown"
Sender = Callable[[str, CustomResourceResponse], None]


def is_custom_resource_request(event: Mapping[str, Any]) -> bool:
    return "RequestType" in event and "ResponseURL" in event


def running_version(context: LambdaContextLike | None) -> str | None:
    """The published version this sandbox runs (``$LATEST`` or None when not invoked as one)."""
    version = getattr(context, "function_version", None) or os.environ.get(
        "AWS_LAMBDA_FUNCTION_VERSION"
    )
    return str(version) if version else None


def rollback_shaped(request: CustomResourceRequest, version: str | None) -> bool:
    """An Update whose ``FunctionVersion`` is not the running version: a rollback's request.

    Only published versions can be compared: with ``$LATEST`` or no version (a local invoke)
    nothing can be told, and the request is served as usual.
    """
    if request.RequestType != "Update" or version in (None, "$LATEST"):
        return False
    requested = requested_version(request)
    return requested is not None and requested != version


def requested_version(request: CustomResourceRequest) -> str | None:
    """The version number the request was made for.

    The template passes ``!Ref MigrationFunction.Version``, which CloudFormation resolves to the
    version's ARN (``arn:aws:lambda:...:function:name:7``); a bare number is accepted too.
    """
    value = request.ResourceProperties.get(VERSION_PROPERTY)
    if value is None:
        return None
    return str(value).rsplit(":", 1)[-1]


def handle_invocation(
    event: Mapping[str, Any],
    context: LambdaContextLike | None,
    *,
    run_migrations: RunMigrations,
    read_revision: ReadRevision | None = None,
) -> dict[str, str] | None:
    """The migration function's whole behaviour: CloudFormation request or plain invoke.

    A CloudFormation request is answered through its ``ResponseURL`` (the return value is
    ignored); a plain invoke returns ``{"action": "upgrade", "revision": ...}`` and lets errors
    propagate, so the caller sees them as the invocation's error.
    """
    if is_custom_resource_request(event):
        handle(event, context, run_migrations=run_migrations, read_revision=read_revision)
        return None
    try:
        invocation = PlainInvocation.model_validate(event)
    except ValidationError:
        raise ValueError(
            'expected a CloudFormation custom resource request or {"action": "upgrade"}'
        ) from None
    return {"action": invocation.action, "revision": run_migrations()}


def handle(
    event: Mapping[str, Any],
    context: LambdaContextLike | None,
    *,
    run_migrations: RunMigrations,
    read_revision: ReadRevision | None = None,
    send: Sender | None = None,
    timeout_margin_seconds: float = TIMEOUT_MARGIN_SECONDS,
) -> None:
    """Serve one custom resource request; always answers (an allowed URL), never raises."""
    sender = send or send_response
    url = event.get("ResponseURL")
    if not isinstance(url, str) or not response_url_allowed(url):
        logger.error("refused: the ResponseURL is not a pre-signed S3 URL (nothing was run)")
        return
    try:
        request = CustomResourceRequest.model_validate(event)
    except ValidationError as exc:
        _answer_malformed(event, exc, sender)
        return
    answer = _Answer(request, sender)
    logger.info(
        "custom resource %s %s (request %s)",
        request.RequestType,
        request.LogicalResourceId,
        request.RequestId,
    )
    if request.RequestType == "Delete":
        answer("SUCCESS", "Delete leaves the database schema in place")
        return
    version = running_version(context)
    if rollback_shaped(request, version):
        requested = requested_version(request)
        revision = _revision_or_unknown(read_revision)
        answer(
            "SUCCESS",
            f"rollback: {VERSION_PROPERTY} {requested} is not the running version {version}; "
            f"schema left at {revision} (never migrated downwards)",
            {"Revision": revision},
        )
        return
    watchdog = _start_watchdog(context, answer, timeout_margin_seconds)
    try:
        revision = run_migrations()
    except Exception as exc:
        logger.exception("migration failed")
        answer("FAILED", f"migration failed: {failure_reason(exc)}")
    else:
        answer("SUCCESS", f"database schema at revision {revision}", {"Revision": revision})
    finally:
        if watchdog is not None:
            watchdog.cancel()
            # If it fired, let its PUT finish: Lambda freezes the sandbox once we return.
            watchdog.join()


def _revision_or_unknown(read_revision: ReadRevision | None) -> str:
    """The current revision for the answer's ``Data`` (``GetAtt Revision`` must resolve even in a
    rollback); a database that cannot be read must not turn the rollback into a failure."""
    if read_revision is None:
        return UNKNOWN_REVISION
    try:
        return read_revision() or UNKNOWN_REVISION
    except Exception as exc:
        logger.warning("could not read the schema revision: %s", failure_reason(exc))
        return UNKNOWN_REVISION


def failure_reason(exc: BaseException) -> str:
    """A one-line description of ``exc`` for CloudFormation's event log.

    Database errors are described by the driver's own error (type and message, e.g.
    ``UndefinedTable: relation "x" does not exist``) without SQLAlchemy's statement parameters.
    """
    detail: BaseException = exc.orig if isinstance(exc, DBAPIError) and exc.orig else exc
    reason = " ".join(f"{type(detail).__name__}: {detail}".split())
    if len(reason) > REASON_MAX_CHARS:
        reason = reason[: REASON_MAX_CHARS - 3] + "..."
    return reason


def send_response(
    url: str,
    response: CustomResourceResponse,
    *,
    timeout: float = RESPONSE_TIMEOUT_SECONDS,
    attempts: int = RESPONSE_ATTEMPTS,
) -> None:
    """PUT ``response`` to the pre-signed URL, retrying transient failures.

    The empty ``Content-Type`` matters: the URL's signature covers no content type, and S3
    rejects a request whose headers differ from what was signed.
    """
    if not response_url_allowed(url):
        raise ValueError("the ResponseURL is not a pre-signed S3 URL")
    body = response.model_dump_json().encode()
    request = urllib.request.Request(  # noqa: S310 (scheme checked above)
        url,
        data=body,
        method="PUT",
        headers={"Content-Type": "", "Content-Length": str(len(body))},
    )
    for attempt in range(1, attempts + 1):
        try:
            with urllib.request.urlopen(request, timeout=timeout) as reply:  # noqa: S310
                reply.read()
            return
        except (urllib.error.URLError, OSError) as exc:
            if attempt == attempts:
                raise
            logger.warning("answering CloudFormation failed (attempt %d): %s", attempt, exc)
            time.sleep(attempt)


class _Answer:
    """Sends the one response a request gets, whichever of the job and the watchdog is first."""

    def __init__(self, request: CustomResourceRequest, send: Sender) -> None:
        self._request = request
        self._send = send
        self._lock = threading.Lock()
        self._answered = False

    def __call__(self, status: Status, reason: str, data: dict[str, str] | None = None) -> None:
        with self._lock:
            if self._answered:
                logger.warning("already answered; dropping %s: %s", status, reason)
                return
            self._answered = True
        request = self._request
        response = CustomResourceResponse(
            Status=status,
            Reason=reason,
            PhysicalResourceId=request.PhysicalResourceId or PHYSICAL_RESOURCE_ID,
            StackId=request.StackId,
            RequestId=request.RequestId,
            LogicalResourceId=request.LogicalResourceId,
            Data=data or {},
        )
        logger.info("answering %s: %s", status, reason)
        _deliver(self._send, request.ResponseURL, response)


def _start_watchdog(
    context: LambdaContextLike | None, answer: _Answer, margin_seconds: float
) -> threading.Timer | None:
    """Answer FAILED ``margin_seconds`` before the Lambda timeout, should the job still run."""
    if context is None:
        return None
    delay = max(0.0, context.get_remaining_time_in_millis() / 1000 - margin_seconds)
    timer = threading.Timer(
        delay,
        answer,
        args=(
            "FAILED",
            f"migration still running {margin_seconds:.0f}s before the function's timeout "
            "(waiting for another deploy's migration lock?); raise the timeout or retry",
        ),
    )
    timer.daemon = True
    timer.start()
    return timer


def _answer_malformed(event: Mapping[str, Any], error: ValidationError, send: Sender) -> None:
    """A request this handler cannot parse still gets a FAILED answer if it can be addressed."""
    logger.error("malformed custom resource request: %s", error)
    url = event.get("ResponseURL")
    if not isinstance(url, str):
        return
    response = CustomResourceResponse(
        Status="FAILED",
        Reason="malformed custom resource request",
        PhysicalResourceId=str(event.get("PhysicalResourceId") or PHYSICAL_RESOURCE_ID),
        StackId=str(event.get("StackId", "")),
        RequestId=str(event.get("RequestId", "")),
        LogicalResourceId=str(event.get("LogicalResourceId", "")),
    )
    _deliver(send, url, response)


def _deliver(send: Sender, url: str, response: CustomResourceResponse) -> None:
    """Send, logging (never raising) a failure: there is nobody left to tell."""
    try:
        send(url, response)
    except Exception:
        logger.exception("could not deliver the response to CloudFormation")
