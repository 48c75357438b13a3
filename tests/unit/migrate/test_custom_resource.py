"""The custom resource protocol without a database: every path answers once and never raises."""

from __future__ import annotations

import threading
import urllib.error
from collections.abc import Iterator
from typing import Any

import custom_resource
import pytest
from custom_resource import CustomResourceResponse, failure_reason, send_response
from sqlalchemy.exc import ProgrammingError

from tests.support.cloudformation import ResponseServer, response_server


class Recorder:
    """A sender that records responses (and can be made to fail)."""

    def __init__(self, error: Exception | None = None) -> None:
        self.sent: list[tuple[str, CustomResourceResponse]] = []
        self.error = error
        self.first = threading.Event()

    def __call__(self, url: str, response: CustomResourceResponse) -> None:
        self.sent.append((url, response))
        self.first.set()
        if self.error is not None:
            raise self.error


class Context:
    def __init__(self, remaining_ms: int) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


PRESIGNED = (
    "https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/"
    "arn%3Aaws%3Acloudformation%3Aus-east-1%3A123456789012%3Astack/s/1%7CDatabaseMigration%7Creq-1"
    "?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=7200&X-Amz-Signature=abc123"
)


def _event(request_type: str = "Create", **extra: Any) -> dict[str, Any]:
    return {
        "RequestType": request_type,
        "ResponseURL": PRESIGNED,
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/s/1",
        "RequestId": "req-1",
        "LogicalResourceId": "DatabaseMigration",
        "ResourceType": "Custom::DatabaseMigration",
        "ResourceProperties": {},
        **extra,
    }


@pytest.fixture
def server() -> Iterator[ResponseServer]:
    with response_server() as running:
        yield running


def _never_called() -> str:
    raise AssertionError("the migrations must not run")


def test_success_carries_the_revision() -> None:
    recorder = Recorder()
    custom_resource.handle(
        _event("Update", PhysicalResourceId="pid"),
        Context(300_000),
        run_migrations=lambda: "0042",
        send=recorder,
    )
    [(url, response)] = recorder.sent
    assert url == _event()["ResponseURL"]
    assert response.Status == "SUCCESS"
    assert response.Data == {"Revision": "0042"}
    assert response.PhysicalResourceId == "pid"
    assert (response.StackId, response.RequestId) == (_event()["StackId"], "req-1")


def test_failure_names_the_problem() -> None:
    recorder = Recorder()

    def broken() -> str:
        raise RuntimeError("the schema is\n  confused")

    custom_resource.handle(_event(), None, run_migrations=broken, send=recorder)
    [(_, response)] = recorder.sent
    assert response.Status == "FAILED"
    assert response.Reason == "migration failed: RuntimeError: the schema is confused"
    assert response.PhysicalResourceId == custom_resource.PHYSICAL_RESOURCE_ID


def test_delete_does_not_migrate() -> None:
    recorder = Recorder()
    custom_resource.handle(
        _event("Delete", PhysicalResourceId="pid"),
        None,
        run_migrations=_never_called,
        send=recorder,
    )
    [(_, response)] = recorder.sent
    assert (response.Status, response.PhysicalResourceId) == ("SUCCESS", "pid")


def test_malformed_request_is_still_answered() -> None:
    recorder = Recorder()
    custom_resource.handle(_event("Replace"), None, run_migrations=_never_called, send=recorder)
    [(_, response)] = recorder.sent
    assert response.Status == "FAILED"
    assert response.RequestId == "req-1"


def test_undeliverable_answer_does_not_raise() -> None:
    recorder = Recorder(error=urllib.error.URLError("unreachable"))
    custom_resource.handle(_event(), None, run_migrations=lambda: "0001", send=recorder)
    assert len(recorder.sent) == 1


def test_watchdog_answers_first_and_only_once() -> None:
    """Remaining time already inside the margin: FAILED at once, the late SUCCESS dropped."""
    recorder = Recorder()

    def slow() -> str:
        assert recorder.first.wait(timeout=10)  # the watchdog has answered by now
        return "0001"

    custom_resource.handle(
        _event(), Context(1_000), run_migrations=slow, send=recorder, timeout_margin_seconds=5
    )
    [(_, response)] = recorder.sent
    assert response.Status == "FAILED"
    assert "timeout" in response.Reason


def test_failure_reason_uses_the_driver_error_without_parameters() -> None:
    orig = Exception('relation "nope" does not exist')
    error = ProgrammingError("INSERT INTO t VALUES (%(v)s)", {"v": "private-value"}, orig)
    reason = failure_reason(error)
    assert reason == 'Exception: relation "nope" does not exist'
    assert "private-value" not in reason


def test_failure_reason_is_bounded() -> None:
    reason = failure_reason(ValueError("x" * 10_000))
    assert len(reason) == custom_resource.REASON_MAX_CHARS
    assert reason.endswith("...")


def test_plain_invocation() -> None:
    result = custom_resource.handle_invocation(
        {"action": "upgrade"}, None, run_migrations=lambda: "0007"
    )
    assert result == {"action": "upgrade", "revision": "0007"}
    with pytest.raises(ValueError, match="expected a CloudFormation"):
        custom_resource.handle_invocation({}, None, run_migrations=_never_called)


def _response() -> CustomResourceResponse:
    return CustomResourceResponse(
        Status="SUCCESS",
        Reason="ok",
        PhysicalResourceId="pid",
        StackId="stack",
        RequestId="req",
        LogicalResourceId="DatabaseMigration",
        Data={"Revision": "0001"},
    )


def test_send_response_puts_json_with_no_content_type(server: ResponseServer) -> None:
    send_response(server.url("/signed"), _response())
    received = server.next_response(timeout=5)
    assert (received.method, received.path) == ("PUT", "/signed")
    assert received.headers.get("content-type", "") == ""
    assert received.body == _response().model_dump()


def test_send_response_retries(server: ResponseServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(custom_resource.time, "sleep", lambda _seconds: None)
    server.refuse(2)
    send_response(server.url(), _response())
    assert server.refused == 2
    assert server.next_response(timeout=5).body["Status"] == "SUCCESS"


def test_send_response_gives_up(server: ResponseServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(custom_resource.time, "sleep", lambda _seconds: None)
    server.refuse(3)
    with pytest.raises(urllib.error.HTTPError):
        send_response(server.url(), _response(), attempts=3)
    assert server.pending() == []


def test_send_response_refuses_other_schemes() -> None:
    with pytest.raises(ValueError, match="pre-signed S3"):
        send_response("file:///etc/passwd", _response())


class VersionedContext(Context):
    """A context as Lambda gives it when the alias resolves to a published version."""

    def __init__(self, version: str) -> None:
        super().__init__(300_000)
        self.function_version = version


FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:stack-MigrationFunction-X1"


def _update(new_version: str, old_version: str) -> dict[str, Any]:
    """An Update as CloudFormation sends it: ``Ref`` of a Lambda version is the version's ARN."""
    return _event(
        "Update",
        PhysicalResourceId="pid",
        ResourceProperties={
            "ServiceToken": f"{FUNCTION_ARN}:live",
            "FunctionVersion": f"{FUNCTION_ARN}:{new_version}",
        },
        OldResourceProperties={
            "ServiceToken": f"{FUNCTION_ARN}:live",
            "FunctionVersion": f"{FUNCTION_ARN}:{old_version}",
        },
    )


def test_rollback_shaped_update_answers_success_without_migrating() -> None:
    """Version 8 failed; CloudFormation asks for 7 again while the alias still runs 8."""
    recorder = Recorder()
    custom_resource.handle(
        _update("7", "8"),
        VersionedContext("8"),
        run_migrations=_never_called,
        read_revision=lambda: "0003",
        send=recorder,
    )
    [(_, response)] = recorder.sent
    assert response.Status == "SUCCESS"
    assert response.Data == {"Revision": "0003"}
    assert "FunctionVersion 7 is not the running version 8" in response.Reason
    assert response.PhysicalResourceId == "pid"


def test_rollback_answer_survives_an_unreadable_database() -> None:
    recorder = Recorder()

    def unreadable() -> str:
        raise OSError("connection refused")

    custom_resource.handle(
        _update("7", "8"),
        VersionedContext("8"),
        run_migrations=_never_called,
        read_revision=unreadable,
        send=recorder,
    )
    [(_, response)] = recorder.sent
    assert (response.Status, response.Data) == ("SUCCESS", {"Revision": "unknown"})


def test_update_for_the_running_version_migrates() -> None:
    recorder = Recorder()
    custom_resource.handle(
        _update("8", "7"), VersionedContext("8"), run_migrations=lambda: "0004", send=recorder
    )
    [(_, response)] = recorder.sent
    assert (response.Status, response.Data) == ("SUCCESS", {"Revision": "0004"})


def test_rollback_after_the_alias_moved_back_runs_the_old_code(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Alias already back on 7: the old code upgrades to its head, a no-op on that schema."""
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_VERSION", "7")
    recorder = Recorder()
    custom_resource.handle(
        _update("7", "8"), Context(300_000), run_migrations=lambda: "0003", send=recorder
    )
    [(_, response)] = recorder.sent
    assert response.Data == {"Revision": "0003"}
    assert "rollback" not in response.Reason


@pytest.mark.parametrize("version", ["$LATEST", None])
def test_unpublished_code_cannot_tell_and_migrates(
    version: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_VERSION", raising=False)
    context = VersionedContext(version) if version else Context(300_000)
    recorder = Recorder()
    custom_resource.handle(_update("7", "8"), context, run_migrations=lambda: "0004", send=recorder)
    [(_, response)] = recorder.sent
    assert response.Data == {"Revision": "0004"}


def test_create_is_never_rollback_shaped() -> None:
    recorder = Recorder()
    event = _event("Create", ResourceProperties={"FunctionVersion": "1"})
    custom_resource.handle(
        event, VersionedContext("2"), run_migrations=lambda: "0001", send=recorder
    )
    assert recorder.sent[0][1].Data == {"Revision": "0001"}


@pytest.mark.parametrize(
    "url",
    [
        PRESIGNED,
        "https://cloudformation-custom-resource-response-euwest1.s3-eu-west-1.amazonaws.com/x"
        "?AWSAccessKeyId=AKIA&Expires=1&Signature=abc",
        "https://s3.eu-central-1.amazonaws.com/bucket/key?X-Amz-Signature=abc",
        "https://bucket.s3.cn-north-1.amazonaws.com.cn/key?X-Amz-Signature=abc",
    ],
)
def test_presigned_s3_urls_are_answered(url: str) -> None:
    assert custom_resource.response_url_allowed(url)


@pytest.mark.parametrize(
    "url",
    [
        "https://attacker.example/collect?X-Amz-Signature=abc",
        "https://s3.amazonaws.com.attacker.example/k?X-Amz-Signature=abc",
        "http://bucket.s3.amazonaws.com/key?X-Amz-Signature=abc",  # not https
        "https://bucket.s3.amazonaws.com/key",  # unsigned
        "https://user:pw@bucket.s3.amazonaws.com/key?X-Amz-Signature=abc",
        "http://169.254.169.254/latest/meta-data/",
        "http://127.0.0.1:9001/2018-06-01/runtime/invocation/next",  # no loopback flag
        "file:///etc/passwd",
        "not a url",
    ],
)
def test_other_response_urls_are_refused_and_nothing_runs(
    url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv(custom_resource.LOOPBACK_FLAG, raising=False)
    assert not custom_resource.response_url_allowed(url)
    recorder = Recorder()
    custom_resource.handle(
        _event(ResponseURL=url), Context(300_000), run_migrations=_never_called, send=recorder
    )
    assert recorder.sent == []
    assert "not a pre-signed S3 URL" in caplog.text
    assert url not in caplog.text
    with pytest.raises(ValueError, match="pre-signed S3"):
        send_response(url, _response())


def test_loopback_needs_the_flag_and_is_refused_inside_lambda(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = "http://127.0.0.1:8123/response"
    monkeypatch.delenv(custom_resource.LOOPBACK_FLAG, raising=False)
    assert not custom_resource.response_url_allowed(url)
    monkeypatch.setenv(custom_resource.LOOPBACK_FLAG, "true")
    assert custom_resource.response_url_allowed(url)
    assert not custom_resource.response_url_allowed("http://10.0.0.1:8123/response")
    monkeypatch.setenv("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001")
    assert not custom_resource.response_url_allowed(url)
