"""Model choice from settings, and the API key's path (environment or Secrets Manager via moto)."""

from __future__ import annotations

import json
import logging
import secrets

import boto3
import pytest
from agents import OpenAIChatCompletionsModel, OpenAIResponsesModel
from chat_app.agent import INSTRUCTIONS
from chat_app.model_provider import api_key, build_model, key_from_secret
from chat_app.offline_model import OfflineModel
from chatkit_backend.errors import ConfigurationError
from chatkit_backend.settings import Settings
from pydantic import SecretStr

from tests.support.aws import REGION, fake_aws

KEY = "sk-test-" + "k" * 24
OUR_LOGGERS = ("chat_app", "agents", "openai")
"""Loggers that see the key's path (botocore's own DEBUG wire log is AWS's business)."""


def watch_logs(caplog: pytest.LogCaptureFixture) -> None:
    for name in OUR_LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)


def logged(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(
        record.getMessage() for record in caplog.records if record.name.startswith(OUR_LOGGERS)
    )


def settings(**values: object) -> Settings:
    """Settings from these values only (the model fields default to unset, not to the env)."""
    defaults: dict[str, object] = {
        "openai_api_key": None,
        "openai_api_key_secret_arn": None,
        "openai_base_url": None,
    }
    return Settings(**{**defaults, **values})  # type: ignore[arg-type]


def test_no_key_gives_the_offline_model() -> None:
    assert isinstance(build_model(settings()), OfflineModel)
    assert api_key(settings()) is None


def test_a_key_gives_the_responses_model(caplog: pytest.LogCaptureFixture) -> None:
    watch_logs(caplog)
    model = build_model(settings(openai_api_key=SecretStr(KEY), model_name="gpt-test"))
    assert isinstance(model, OpenAIResponsesModel)
    assert model.model == "gpt-test"
    assert "gpt-test" in logged(caplog)
    assert KEY not in logged(caplog)
    assert KEY not in INSTRUCTIONS


def test_a_base_url_gives_chat_completions_with_or_without_key() -> None:
    keyless = build_model(settings(openai_base_url="http://127.0.0.1:11434/v1", model_name="m"))
    assert isinstance(keyless, OpenAIChatCompletionsModel)
    assert keyless.model == "m"
    keyed = build_model(
        settings(openai_base_url="http://127.0.0.1:11434/v1", openai_api_key=SecretStr(KEY))
    )
    assert isinstance(keyed, OpenAIChatCompletionsModel)


@pytest.mark.parametrize(
    "secret_string",
    [KEY, f"  {KEY}\n", json.dumps({"api_key": KEY}), json.dumps({"OPENAI_API_KEY": KEY})],
)
async def test_the_key_comes_lazily_from_secrets_manager(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, secret_string: str
) -> None:
    watch_logs(caplog)
    with fake_aws(monkeypatch):
        client = boto3.client("secretsmanager", region_name=REGION)
        arn = client.create_secret(
            Name=f"model-key-{secrets.token_hex(4)}", SecretString=secret_string
        )["ARN"]
        configured = settings(openai_api_key_secret_arn=arn)
        assert isinstance(build_model(configured), OpenAIResponsesModel)
        provider = api_key(configured)
        assert callable(provider)
        assert await provider() == KEY
    assert "Responses API" in logged(caplog)
    assert KEY not in logged(caplog)


async def test_a_missing_secret_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with fake_aws(monkeypatch):
        provider = api_key(
            settings(
                openai_api_key_secret_arn=(
                    f"arn:aws:secretsmanager:{REGION}:123456789012:secret:absent-AbCdEf"
                )
            )
        )
        assert callable(provider)
        with pytest.raises(ConfigurationError, match="absent"):
            await provider()


@pytest.mark.parametrize("raw", ["", "{not json", json.dumps({"other": "x"})])
def test_unusable_secret_strings_are_rejected_without_echoing_them(raw: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        key_from_secret(raw)
    if raw:
        assert raw not in str(caught.value)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"openai_base_url": "http://127.0.0.1:9/v1"}, OpenAIChatCompletionsModel),
        (
            {"openai_base_url": "http://127.0.0.1:9/v1", "openai_api": "responses"},
            OpenAIResponsesModel,
        ),
        (
            {"openai_api_key": SecretStr(KEY), "openai_api": "chat_completions"},
            OpenAIChatCompletionsModel,
        ),
        ({"openai_api_key": SecretStr(KEY), "openai_api": "auto"}, OpenAIResponsesModel),
    ],
)
def test_openai_api_chooses_the_model_api(values: dict[str, object], expected: type) -> None:
    model = build_model(settings(**values))
    assert isinstance(model, expected)
    if "openai_base_url" in values:
        assert str(model._client.base_url).startswith("http://127.0.0.1:9/v1")  # type: ignore[attr-defined]
