"""Who may call the chat function's SnapStart hooks (``chat_app.snapstart``), without a database."""

from __future__ import annotations

import pytest
from chat_app.snapstart import (
    AFTER_RESTORE_ENV,
    BEFORE_CHECKPOINT_ENV,
    install_snapstart_routes,
    is_adapter_call,
)
from fastapi import FastAPI


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.53", "::1"])
def test_loopback_without_invocation_headers_is_the_adapter(host: str) -> None:
    assert is_adapter_call(host, {"content-length": "0", "host": "127.0.0.1:8080"})


@pytest.mark.parametrize(
    ("host", "headers"),
    [
        (None, {}),
        ("", {}),
        ("testclient", {}),  # not an address at all
        ("10.0.0.1", {}),
        ("::ffff:203.0.113.9", {}),
        ("127.0.0.1", {"x-amzn-request-context": "{}"}),
        ("127.0.0.1", {"x-amzn-lambda-context": "{}"}),
        ("127.0.0.1", {"x-forwarded-for": "127.0.0.1"}),
    ],
)
def test_anything_else_is_not(host: str | None, headers: dict[str, str]) -> None:
    assert not is_adapter_call(host, headers)


class Hooks:
    async def before_checkpoint(self, app: object) -> None:
        raise AssertionError("not called here")

    async def after_restore(self) -> None:
        raise AssertionError("not called here")


def test_routes_follow_the_adapter_variables() -> None:
    app = FastAPI()
    environ = {BEFORE_CHECKPOINT_ENV: "/_lwa/before-checkpoint", AFTER_RESTORE_ENV: " "}
    added = install_snapstart_routes(app, Hooks(), environ)  # type: ignore[arg-type]
    assert added == ["/_lwa/before-checkpoint"]
    assert install_snapstart_routes(FastAPI(), Hooks(), {}) == []  # type: ignore[arg-type]


def test_a_relative_hook_path_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match=AFTER_RESTORE_ENV):
        install_snapstart_routes(FastAPI(), Hooks(), {AFTER_RESTORE_ENV: "_lwa/after"})  # type: ignore[arg-type]
