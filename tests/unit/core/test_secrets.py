"""Secrets Manager through Powertools (moto): URL building, error messages, caching, refresh."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from chatkit_backend.errors import ConfigurationError
from chatkit_backend.secrets import (
    database_url_from_secret,
    get_json_secret,
    get_secret_value,
)
from sqlalchemy.engine import make_url

from tests.support.aws import REGION, fake_aws

AWKWARD_PASSWORD = "p@ss:w/rd?#%&= \"'"  # every character that means something in a URL


@pytest.fixture
def secretsmanager(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with fake_aws(monkeypatch):
        yield boto3.client("secretsmanager", region_name=REGION)


def _create(client: Any, name: str, value: str | bytes) -> str:
    key = "SecretBinary" if isinstance(value, bytes) else "SecretString"
    return str(client.create_secret(Name=name, **{key: value})["ARN"])


def _rds_secret(**overrides: Any) -> str:
    secret = {
        "engine": "postgres",
        "host": "db.example.internal",
        "port": 5432,
        "username": "app_user",
        "password": AWKWARD_PASSWORD,
        "dbname": "chat",
    }
    secret.update(overrides)
    return json.dumps({key: value for key, value in secret.items() if value is not None})


def test_rds_secret_becomes_an_escaped_url(secretsmanager: Any) -> None:
    arn = _create(secretsmanager, "db-creds", _rds_secret(port=6543))
    url = make_url(database_url_from_secret(arn))
    assert url.drivername == "postgresql+psycopg"
    assert url.username == "app_user"
    assert url.password == AWKWARD_PASSWORD
    assert (url.host, url.port, url.database) == ("db.example.internal", 6543, "chat")


def test_port_and_dbname_default(secretsmanager: Any) -> None:
    arn = _create(secretsmanager, "db-creds", _rds_secret(port=None, dbname=None))
    url = make_url(database_url_from_secret(arn))
    assert (url.port, url.database) == (5432, "postgres")


def test_url_secret_is_used_as_is(secretsmanager: Any) -> None:
    given = "postgresql+psycopg://u:pw@proxy.internal:5432/chat"
    arn = _create(secretsmanager, "db-url", json.dumps({"url": given}))
    assert database_url_from_secret(arn) == given


def test_binary_secret_is_decoded(secretsmanager: Any) -> None:
    arn = _create(secretsmanager, "db-binary", _rds_secret().encode())
    assert make_url(database_url_from_secret(arn)).password == AWKWARD_PASSWORD


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (_rds_secret(host=None), "lacks host"),
        (_rds_secret(username=None, password=None), "lacks username, password"),
        (_rds_secret(port="five"), "port that is not a number"),
        (f"password={AWKWARD_PASSWORD}", "is not JSON"),
        (json.dumps([AWKWARD_PASSWORD]), "is not a JSON object"),
    ],
)
def test_unusable_secret_is_named_but_not_shown(
    secretsmanager: Any, value: str, message: str
) -> None:
    arn = _create(secretsmanager, "db-creds", value)
    with pytest.raises(ConfigurationError) as caught:
        database_url_from_secret(arn)
    assert message in str(caught.value)
    assert arn.rsplit(":", 1)[-1] in str(caught.value)  # which secret, by name
    assert AWKWARD_PASSWORD not in str(caught.value)


def test_missing_secret_is_a_configuration_error(secretsmanager: Any) -> None:
    arn = f"arn:aws:secretsmanager:{REGION}:123456789012:secret:gone-AbCdEf"
    with pytest.raises(ConfigurationError, match="cannot read secret gone-AbCdEf"):
        get_secret_value(arn)


def test_values_are_cached(secretsmanager: Any) -> None:
    arn = _create(secretsmanager, "rotating", json.dumps({"generation": 1}))
    assert get_json_secret(arn) == {"generation": 1}
    secretsmanager.put_secret_value(SecretId=arn, SecretString=json.dumps({"generation": 2}))
    assert get_json_secret(arn) == {"generation": 1}  # served from the cache, no AWS call


def test_force_fetch_refreshes_after_rotation(secretsmanager: Any) -> None:
    arn = _create(secretsmanager, "rotating", _rds_secret(password="old-password"))
    assert make_url(database_url_from_secret(arn)).password == "old-password"
    secretsmanager.put_secret_value(SecretId=arn, SecretString=_rds_secret(password="new-one"))
    assert make_url(database_url_from_secret(arn, force_fetch=True)).password == "new-one"
    assert make_url(database_url_from_secret(arn)).password == "new-one"  # and re-cached
