"""Strict tokens when deployed: the settings refuse to start without what binds a JWKS token to
this backend, and the template refuses the same parameters before anything is deployed."""

from __future__ import annotations

from typing import Any

import pytest
from cfnlint.decode import cfn_yaml
from chatkit_backend.settings import Settings

from tests.support.paths import REPO_ROOT

JWKS = "https://idp.example.com/.well-known/jwks.json"


@pytest.mark.parametrize("stage", ["dev", "staging", "prod"])
@pytest.mark.parametrize(
    ("claims", "missing"),
    [
        ({}, "JWT_ISSUER and JWT_AUDIENCE"),
        ({"jwt_issuer": "https://idp.example.com/"}, "JWT_AUDIENCE"),
        ({"jwt_audience": "chatkit-backend"}, "JWT_ISSUER"),
    ],
)
def test_a_deployed_stage_without_iss_or_aud_does_not_start(
    stage: str, claims: dict[str, Any], missing: str
) -> None:
    with pytest.raises(ValueError, match=f"set {missing}"):
        Settings(stage=stage, jwt_jwks_url=JWKS, **claims)


def test_a_deployed_stage_with_both_starts() -> None:
    settings = Settings(
        stage="prod", jwt_jwks_url=JWKS, jwt_issuer="https://idp/", jwt_audience="chatkit"
    )
    assert settings.jwt_max_lifetime_seconds == 24 * 3600


@pytest.mark.parametrize(
    ("stage", "url"),
    [
        ("prod", "http://idp.example.com/jwks.json"),
        ("local", "http://idp.example.com/jwks.json"),
        ("dev", "http://127.0.0.1:8000/jwks.json"),
        ("local", "file:///etc/passwd"),
        ("local", "ftp://idp.example.com/jwks.json"),
    ],
)
def test_jwks_over_anything_but_https_is_refused(stage: str, url: str) -> None:
    with pytest.raises(ValueError, match="JWT_JWKS_URL must be https"):
        Settings(stage=stage, jwt_jwks_url=url, jwt_issuer="i", jwt_audience="a")


def test_plain_http_jwks_only_to_loopback_in_the_local_stage() -> None:
    settings = Settings(jwt_jwks_url="http://127.0.0.1:8123/.well-known/jwks.json")
    assert settings.stage == "local"


def test_the_lifetime_cap_cannot_be_switched_off() -> None:
    with pytest.raises(ValueError, match="jwt_max_lifetime_seconds"):
        Settings(jwt_max_lifetime_seconds=0)


def test_the_template_refuses_jwks_without_iss_and_aud() -> None:
    template = cfn_yaml.load(str(REPO_ROOT / "template.yaml"))
    rule = template["Rules"]["JwksTokensAreBoundToThisBackend"]
    assert rule["RuleCondition"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "JwtJwksUrl"}, ""]}]}
    [assertion] = rule["Assertions"]
    refs = {
        condition["Fn::Not"][0]["Fn::Equals"][0]["Ref"]
        for condition in assertion["Assert"]["Fn::And"]
    }
    assert refs == {"JwtIssuer", "JwtAudience"}
    parameters = template["Parameters"]
    assert parameters["JwtJwksUrl"]["AllowedPattern"] == "^$|^https://.+"
    assert parameters["JwtMaxLifetimeSeconds"]["Default"] == 86400
    environment = template["Globals"]["Function"]["Environment"]["Variables"]
    assert environment["JWT_MAX_LIFETIME_SECONDS"] == {"Ref": "JwtMaxLifetimeSeconds"}


def test_the_template_keeps_database_tls_on_outside_dev() -> None:
    template = cfn_yaml.load(str(REPO_ROOT / "template.yaml"))
    assert template["Parameters"]["DatabaseSslMode"]["Default"] == "require"
    rule = template["Rules"]["DatabaseTlsOutsideDev"]
    assert rule["RuleCondition"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "Stage"}, "dev"]}]}
    [assertion] = rule["Assertions"]
    assert assertion["Assert"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "DatabaseSslMode"}, "disable"]}]
    }
    environment = template["Globals"]["Function"]["Environment"]["Variables"]
    assert environment["DATABASE_SSLMODE"] == {"Ref": "DatabaseSslMode"}
