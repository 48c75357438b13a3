"""Settings a deployed stack relies on: RDS-managed secrets and the required model (issue 12).

An RDS-managed master secret holds only ``username`` and ``password``; the template passes the
endpoint as ``DATABASE_HOST`` / ``DATABASE_PORT`` / ``DATABASE_NAME``. Outside the dev stage the
template sets ``MODEL_REQUIRED``: a chat function without a model must refuse to start rather
than answer every user with the offline model.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from chatkit_backend.errors import ConfigurationError
from chatkit_backend.secrets import database_url_from_secret
from chatkit_backend.settings import Settings, get_settings
from pydantic import ValidationError
from sqlalchemy.engine import make_url

from tests.support.aws import REGION, fake_aws

MANAGED_SECRET = {"username": "postgres", "password": "pw with spaces"}
"""Exactly what RDS writes for ManageMasterUserPassword: no host, port or dbname."""


@pytest.fixture
def secretsmanager(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name in ("DATABASE_HOST", "DATABASE_PORT", "DATABASE_NAME"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    with fake_aws(monkeypatch):
        yield boto3.client("secretsmanager", region_name=REGION)
    get_settings.cache_clear()


def _secret(client: Any, value: dict[str, Any]) -> str:
    return str(client.create_secret(Name="rds!cluster-1", SecretString=json.dumps(value))["ARN"])


def test_rds_managed_secret_with_the_endpoint_from_settings(
    secretsmanager: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_HOST", "proxy.example.internal")
    monkeypatch.setenv("DATABASE_PORT", "6432")
    monkeypatch.setenv("DATABASE_NAME", "chatkit")
    get_settings.cache_clear()
    url = make_url(database_url_from_secret(_secret(secretsmanager, MANAGED_SECRET)))
    assert (url.host, url.port, url.database) == ("proxy.example.internal", 6432, "chatkit")
    assert (url.username, url.password) == ("postgres", "pw with spaces")


def test_rds_managed_secret_without_a_host_names_the_setting(secretsmanager: Any) -> None:
    arn = _secret(secretsmanager, MANAGED_SECRET)
    with pytest.raises(ConfigurationError, match=r"lacks host.*DATABASE_HOST"):
        database_url_from_secret(arn)


def test_the_configured_host_wins_over_the_secrets(
    secretsmanager: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One secret, two endpoints: the migration job connects past the proxy."""
    arn = _secret(secretsmanager, {**MANAGED_SECRET, "host": "proxy.internal", "port": 5432})
    monkeypatch.setenv("DATABASE_HOST", "cluster.internal")
    get_settings.cache_clear()
    url = make_url(database_url_from_secret(arn))
    assert (url.host, url.port, url.database) == ("cluster.internal", 5432, "postgres")


def _settings(**values: Any) -> Settings:
    return Settings.model_validate(values)


@pytest.mark.parametrize(
    "configured",
    [
        {"openai_api_key_secret_arn": "arn:aws:secretsmanager:us-east-1:1:secret:k-AbC123"},
        {"openai_api_key": "sk-test"},
        {"openai_base_url": "http://127.0.0.1:9/v1"},
        {"model": "offline"},
    ],
)
def test_a_required_model_may_be_any_configured_one(configured: dict[str, Any]) -> None:
    assert _settings(model_required=True, **configured).model_required


def test_a_required_model_refuses_to_fall_back_silently() -> None:
    with pytest.raises(ValidationError, match=r"no model configured.*MODEL=offline"):
        _settings(model_required=True)


def test_model_required_and_offline_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("OPENAI_API_KEY", "OPENAI_API_KEY_SECRET_ARN", "OPENAI_BASE_URL", "MODEL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MODEL_REQUIRED", "true")
    with pytest.raises(ValidationError):
        Settings()
    monkeypatch.setenv("MODEL", "offline")
    assert Settings().model == "offline"
    monkeypatch.setenv("MODEL", "gpt-4.1")  # only `offline` is a choice; models come from keys
    with pytest.raises(ValidationError):
        Settings()


def test_local_and_dev_keep_the_offline_default() -> None:
    assert _settings().model is None
    assert not _settings().model_required
