"""After a SnapStart restore nothing frozen into the snapshot is trusted (layer ``snapstart``).

Each test freezes some state the way an init phase would, runs the after-restore step, and checks
the state is drawn or fetched anew: ``random``'s sequence, the Powertools secret cache (moto), the
JWKS (a real endpoint that counts its hits) and an HS256 secret that rotated in Secrets Manager.
"""

from __future__ import annotations

import random
import sys
import types
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.parameters.base import DEFAULT_PROVIDERS
from chatkit_backend.auth import DevUserAuthenticator, JwtAuthenticator
from chatkit_backend.errors import AuthError
from chatkit_backend.init_phase import complete_models
from chatkit_backend.secrets import clear_cache, get_secret_value
from chatkit_backend.settings import Settings
from chatkit_backend.snapstart import refresh_after_restore

from tests.support.aws import REGION, fake_aws
from tests.support.jwks_server import JwksServer
from tests.support.tokens import jwks, mint_hs256, rsa_key

OLD_SECRET = "snapshot-era-hs256-secret-0123456789abcdef"
NEW_SECRET = "rotated-hs256-secret-after-restore-0123456789"


def auth_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {"jwt_secret": None, "jwt_jwks_url": None, "jwt_secret_arn": None}
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def secretsmanager(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with fake_aws(monkeypatch):
        yield boto3.client("secretsmanager", region_name=REGION)


def test_random_is_reseeded() -> None:
    random.seed(1234)  # the state every sandbox restored from one snapshot would share
    frozen = random.getstate()
    refresh_after_restore(auth_settings(), DevUserAuthenticator("dev"))
    assert random.getstate() != frozen


def test_secret_cache_and_clients_are_dropped(secretsmanager: Any) -> None:
    arn = secretsmanager.create_secret(Name="snap/cached", SecretString="before")["ARN"]
    assert get_secret_value(arn) == "before"
    assert DEFAULT_PROVIDERS  # the provider (with its boto3 client) is cached
    secretsmanager.put_secret_value(SecretId=arn, SecretString="after")
    assert get_secret_value(arn) == "before"  # still the cached value
    clear_cache()
    assert not DEFAULT_PROVIDERS
    assert get_secret_value(arn) == "after"


def test_clear_cache_does_not_need_powertools_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "aws_lambda_powertools.utilities.parameters")
    clear_cache()  # nothing to clear, and nothing imported for it
    assert "aws_lambda_powertools.utilities.parameters" not in sys.modules


async def test_rotated_jwt_secret_is_read_after_restore(secretsmanager: Any) -> None:
    arn = secretsmanager.create_secret(Name="snap/jwt", SecretString=OLD_SECRET)["ARN"]
    settings = auth_settings(jwt_secret_arn=arn)
    authenticator = JwtAuthenticator(settings)  # the init phase reads the secret once
    secretsmanager.put_secret_value(SecretId=arn, SecretString=NEW_SECRET)
    new_token = f"Bearer {mint_hs256('alice', secret=NEW_SECRET)}"
    with pytest.raises(AuthError):
        await authenticator.authenticate(new_token)

    refresh_after_restore(settings, authenticator)

    assert (await authenticator.authenticate(new_token)).user_id == "alice"
    with pytest.raises(AuthError):
        await authenticator.authenticate(f"Bearer {mint_hs256('alice', secret=OLD_SECRET)}")


async def test_jwks_is_fetched_again_after_restore() -> None:
    key = rsa_key()
    server = JwksServer(jwks(key))
    with server.running():
        settings = auth_settings(jwt_jwks_url=server.url, jwks_cache_seconds=3600)
        authenticator = JwtAuthenticator(settings)
        await authenticator.authenticate(f"Bearer {key.mint('a')}")
        await authenticator.authenticate(f"Bearer {key.mint('b')}")
        assert server.hits == 1  # cached for an hour, rate-limited for 30 s

        refresh_after_restore(settings, authenticator)
        await authenticator.authenticate(f"Bearer {key.mint('c')}")
        assert server.hits == 2


async def test_keys_held_still_verify_when_the_jwks_is_down_after_restore() -> None:
    key = rsa_key()
    server = JwksServer(jwks(key))
    with server.running():
        settings = auth_settings(jwt_jwks_url=server.url)
        authenticator = JwtAuthenticator(settings)
        await authenticator.authenticate(f"Bearer {key.mint('a')}")
        server.status = 503
        refresh_after_restore(settings, authenticator)
        assert (await authenticator.authenticate(f"Bearer {key.mint('b')}")).user_id == "b"
        assert server.hits == 2


def test_models_with_deferred_schemas_are_completed(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("snapfixture_models")
    exec(  # noqa: S102 (a fixture module: a model whose annotation names a later class)
        "from pydantic import BaseModel\n"  # BaseModel itself is in the namespace too
        "class Early(BaseModel):\n"
        "    later: 'Later'\n"
        "class Later(BaseModel):\n"
        "    value: int\n",
        module.__dict__,
    )
    monkeypatch.setitem(sys.modules, module.__name__, module)
    early = module.__dict__["Early"]
    assert not early.__pydantic_complete__

    assert complete_models(("snapfixture_",)) == 1
    assert early.__pydantic_complete__
    assert complete_models(("snapfixture_",)) == 0
    assert early.model_validate({"later": {"value": 3}}).later.value == 3
