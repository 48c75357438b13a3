"""Auth: every refusal case, for HS256 and for RS256/ES256 keys served by a real local JWKS."""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from chatkit_backend import auth
from chatkit_backend.auth import (
    DevUserAuthenticator,
    JwksUnavailable,
    JwtAuthenticator,
    build_authenticator,
    parse_jwks,
)
from chatkit_backend.errors import AuthError, ConfigurationError
from chatkit_backend.settings import Settings
from jwt import api_jwk, jwk_set_cache, jwks_client

from tests.support.jwks_server import JwksServer
from tests.support.tokens import (
    TEST_JWT_SECRET,
    KeyPair,
    claims_for,
    ec_key,
    forge,
    jwks,
    mint_hs256,
    rsa_key,
)

OTHER_SECRET = "another-secret-of-enough-length-0123456789"
ISSUER = "https://issuer.example"
AUDIENCE = "chatkit-api"


def make_settings(**overrides: Any) -> Settings:
    """Settings with every auth field explicit, whatever the environment says."""
    values: dict[str, Any] = {
        "jwt_secret": None,
        "jwt_jwks_url": None,
        "jwt_issuer": None,
        "jwt_audience": None,
        "jwt_leeway_seconds": 30,
        "jwks_cache_seconds": 600,
        "dev_user_id": "dev-user",
    }
    values.update(overrides)
    return Settings(**values)


class FakeClock:
    """Monotonic time the tests move by hand (cache expiry and rate limit without sleeping).

    The fixture puts it where PyJWT's JWKS client, its key-set cache and ``auth`` read the clock.
    """

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


async def refused(authenticator: Any, authorization: str | None) -> str:
    with pytest.raises(AuthError) as info:
        await authenticator.authenticate(authorization)
    assert info.value.status_code == 401
    return info.value.message


def bearer(token: str) -> str:
    return f"Bearer {token}"


@pytest.fixture(scope="module")
def jwks_server() -> Iterator[JwksServer]:
    server = JwksServer(jwks(rsa_key(), ec_key()))
    with server.running():
        yield server


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    for module in (jwks_client, jwk_set_cache, api_jwk, auth):
        monkeypatch.setattr(module, "time", SimpleNamespace(monotonic=fake))
    return fake


# --- the header ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hs256() -> JwtAuthenticator:
    return JwtAuthenticator(make_settings(jwt_secret=TEST_JWT_SECRET))


async def test_valid_hs256_token_gives_user_token_and_request_id(hs256: JwtAuthenticator) -> None:
    token = mint_hs256("alice")
    context = await hs256.authenticate(bearer(token), request_id="req-1")
    assert (context.user_id, context.bearer_token, context.request_id) == ("alice", token, "req-1")
    assert token not in repr(context)


async def test_bearer_scheme_is_case_insensitive(hs256: JwtAuthenticator) -> None:
    assert (await hs256.authenticate(f"bearer  {mint_hs256('bob')} ")).user_id == "bob"


@pytest.mark.parametrize("header", [None, "", "   "])
async def test_missing_header(hs256: JwtAuthenticator, header: str | None) -> None:
    assert await refused(hs256, header) == "Missing Authorization header"


@pytest.mark.parametrize("header", ["Basic dXNlcjpwdw==", "Bearer", "Bearer a b", "Token abc"])
async def test_not_a_bearer_token(hs256: JwtAuthenticator, header: str) -> None:
    assert await refused(hs256, header) == "Authorization header is not a Bearer token"


@pytest.mark.parametrize(
    "token", ["abc", "a.b.c", "eyJhbGciOiJIUzI1NiJ9.e30", "x" * (auth.MAX_TOKEN_CHARS + 1)]
)
async def test_malformed_token(hs256: JwtAuthenticator, token: str) -> None:
    assert await refused(hs256, bearer(token)) == "Malformed token"


async def test_error_messages_never_echo_the_token(hs256: JwtAuthenticator) -> None:
    token = mint_hs256("alice", secret=OTHER_SECRET)
    message = await refused(hs256, bearer(token))
    assert token not in message
    assert token.split(".")[1] not in message


# --- claims: the same refusals for every key flavour ---------------------------------------------

Mint = Callable[..., str]


@pytest.fixture(params=["HS256", "RS256", "ES256"])
def flavour(
    request: pytest.FixtureRequest, jwks_server: JwksServer
) -> Callable[..., tuple[JwtAuthenticator, Mint]]:
    """(authenticator built with extra settings, minting function) for one algorithm."""

    def build(**overrides: Any) -> tuple[JwtAuthenticator, Mint]:
        if request.param == "HS256":
            return JwtAuthenticator(make_settings(jwt_secret=TEST_JWT_SECRET, **overrides)), (
                mint_hs256
            )
        key = rsa_key() if request.param == "RS256" else ec_key()
        authenticator = JwtAuthenticator(make_settings(jwt_jwks_url=jwks_server.url, **overrides))
        return authenticator, key.mint

    return build


async def test_flavour_accepts_a_valid_token(flavour: Callable[..., Any]) -> None:
    authenticator, mint = flavour()
    assert (await authenticator.authenticate(bearer(mint("carol")))).user_id == "carol"


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        ({"exp": int(time.time()) - 3600}, "Token has expired"),
        ({"exp": None}, "Token has no expiry (exp)"),
        ({"nbf": int(time.time()) + 3600}, "Token is not yet valid"),
        ({"iat": int(time.time()) + 3600}, "Token is not yet valid"),
        ({"sub": None}, "Token has no subject (sub)"),
        ({"sub": ""}, "Invalid token subject"),
        ({"sub": 42}, "Invalid token subject"),
        ({"sub": "u" * 256}, "Invalid token subject"),
    ],
)
async def test_flavour_refuses_bad_claims(
    flavour: Callable[..., Any], claims: dict[str, Any], message: str
) -> None:
    authenticator, mint = flavour()
    claims = dict(claims)  # the parameter is shared by the three flavours
    sub = claims.pop("sub", "dave")
    assert await refused(authenticator, bearer(mint(sub, **claims))) == message


async def test_flavour_allows_clock_skew_within_leeway(flavour: Callable[..., Any]) -> None:
    authenticator, mint = flavour(jwt_leeway_seconds=60)
    now = int(time.time())
    token = mint("erin", exp=now - 20, nbf=now + 20)
    assert (await authenticator.authenticate(bearer(token))).user_id == "erin"


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        ({"iss": "https://evil.example"}, "Invalid token issuer"),
        ({}, "Token has no issuer (iss)"),
        ({"iss": ISSUER, "aud": "someone-else"}, "Invalid token audience"),
        ({"iss": ISSUER, "aud": ["a", "b"]}, "Invalid token audience"),
        ({"iss": ISSUER}, "Token has no audience (aud)"),
    ],
)
async def test_flavour_enforces_configured_issuer_and_audience(
    flavour: Callable[..., Any], claims: dict[str, Any], message: str
) -> None:
    authenticator, mint = flavour(jwt_issuer=ISSUER, jwt_audience=AUDIENCE)
    assert await refused(authenticator, bearer(mint("frank", **claims))) == message


async def test_flavour_accepts_configured_issuer_and_audience(flavour: Callable[..., Any]) -> None:
    authenticator, mint = flavour(jwt_issuer=ISSUER, jwt_audience=AUDIENCE)
    token = mint("gina", iss=ISSUER, aud=["other", AUDIENCE])
    assert (await authenticator.authenticate(bearer(token))).user_id == "gina"


async def test_unconfigured_issuer_and_audience_are_not_checked(
    flavour: Callable[..., Any],
) -> None:
    authenticator, mint = flavour()
    token = mint("hank", iss="anyone", aud="anything")
    assert (await authenticator.authenticate(bearer(token))).user_id == "hank"


async def test_flavour_refuses_a_tampered_payload(flavour: Callable[..., Any]) -> None:
    authenticator, mint = flavour()
    header, _, signature = mint("ivan").split(".")
    _, payload, _ = mint("mallory").split(".")
    message = await refused(authenticator, bearer(f"{header}.{payload}.{signature}"))
    assert message == "Invalid token signature"


# --- algorithms ---------------------------------------------------------------------------------


async def test_hs256_signed_with_another_secret(hs256: JwtAuthenticator) -> None:
    token = mint_hs256("alice", secret=OTHER_SECRET)
    assert await refused(hs256, bearer(token)) == "Invalid token signature"


@pytest.mark.parametrize("alg", ["HS384", "HS512"])
async def test_other_hmac_algorithms_are_refused(hs256: JwtAuthenticator, alg: str) -> None:
    import jwt

    token = jwt.encode(claims_for("alice"), TEST_JWT_SECRET * 2, algorithm=alg)
    assert await refused(hs256, bearer(token)) == f"Token algorithm {alg} is not allowed"


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
async def test_alg_none_is_refused(hs256: JwtAuthenticator, alg: str) -> None:
    token = forge({"alg": alg, "typ": "JWT"}, claims_for("alice"))
    assert await refused(hs256, bearer(token)) == f"Token algorithm {alg} is not allowed"


async def test_unprintable_alg_is_not_echoed(hs256: JwtAuthenticator) -> None:
    token = forge({"alg": "<script>"}, claims_for("alice"))
    assert await refused(hs256, bearer(token)) == "Token algorithm ? is not allowed"


async def test_rs256_token_without_jwks_is_refused(hs256: JwtAuthenticator) -> None:
    assert await refused(hs256, bearer(rsa_key().mint("alice"))) == (
        "Token algorithm RS256 is not allowed"
    )


async def test_hs256_token_without_secret_is_refused(jwks_server: JwksServer) -> None:
    authenticator = JwtAuthenticator(make_settings(jwt_jwks_url=jwks_server.url))
    assert await refused(authenticator, bearer(mint_hs256("alice"))) == (
        "Token algorithm HS256 is not allowed"
    )


@pytest.mark.parametrize("key", [rsa_key, ec_key])
async def test_algorithm_confusion_public_key_as_hmac_secret(
    jwks_server: JwksServer, key: Callable[[], KeyPair]
) -> None:
    """HS256 'signed' with the published public key: refused with JWKS only, and with a secret
    configured too (then it is just a wrong HMAC key)."""
    pair = key()
    token = forge({"alg": "HS256", "kid": pair.kid}, claims_for("mallory"), pair.public_pem())
    jwks_only = JwtAuthenticator(make_settings(jwt_jwks_url=jwks_server.url))
    both = JwtAuthenticator(make_settings(jwt_jwks_url=jwks_server.url, jwt_secret=TEST_JWT_SECRET))
    assert await refused(jwks_only, bearer(token)) == "Token algorithm HS256 is not allowed"
    assert await refused(both, bearer(token)) == "Invalid token signature"


async def test_both_configured_accepts_either_family(jwks_server: JwksServer) -> None:
    both = JwtAuthenticator(make_settings(jwt_jwks_url=jwks_server.url, jwt_secret=TEST_JWT_SECRET))
    for token in (mint_hs256("a"), rsa_key().mint("b"), ec_key().mint("c")):
        await both.authenticate(bearer(token))


async def test_key_decides_its_algorithm(jwks_server: JwksServer) -> None:
    """A token claiming RS256 under the EC key's kid (and vice versa) is refused."""
    authenticator = JwtAuthenticator(make_settings(jwt_jwks_url=jwks_server.url))
    other_rsa = rsa_key("other-rsa")
    rs_under_ec_kid = other_rsa.mint("mallory", headers={"kid": ec_key().kid})
    es_under_rsa_kid = ec_key("other-ec").mint("mallory", headers={"kid": rsa_key().kid})
    assert await refused(authenticator, bearer(rs_under_ec_kid)) == (
        "Token algorithm RS256 is not allowed for this key"
    )
    assert await refused(authenticator, bearer(es_under_rsa_kid)) == (
        "Token algorithm ES256 is not allowed for this key"
    )


async def test_embedded_header_keys_are_ignored(jwks_server: JwksServer) -> None:
    """``jwk``/``jku`` in the header cannot bring the attacker's own key."""
    authenticator = JwtAuthenticator(make_settings(jwt_jwks_url=jwks_server.url))
    attacker = rsa_key("attacker")
    token = attacker.mint(
        "mallory",
        headers={
            "kid": rsa_key().kid,
            "jwk": attacker.public_jwk(),
            "jku": "http://127.0.0.1:1/evil.json",
        },
    )
    assert await refused(authenticator, bearer(token)) == "Invalid token signature"
    unknown = attacker.mint("mallory", headers={"jwk": attacker.public_jwk()})
    assert await refused(authenticator, bearer(unknown)) == "Unknown signing key"


async def test_token_without_kid_is_refused(jwks_server: JwksServer) -> None:
    authenticator = JwtAuthenticator(make_settings(jwt_jwks_url=jwks_server.url))
    import jwt

    token = jwt.encode(claims_for("alice"), rsa_key().private_key, algorithm="RS256")
    assert await refused(authenticator, bearer(token)) == "Token has no key id (kid)"


# --- JWKS cache, rotation, rate limit -----------------------------------------------------------


async def test_jwks_is_fetched_once_and_cached(clock: FakeClock) -> None:
    server = JwksServer(jwks(rsa_key()))
    with server.running():
        authenticator = JwtAuthenticator(
            make_settings(jwt_jwks_url=server.url, jwks_cache_seconds=600)
        )
        for user in ("a", "b", "c"):
            await authenticator.authenticate(bearer(rsa_key().mint(user)))
        assert server.hits == 1
        clock.advance(599)
        await authenticator.authenticate(bearer(rsa_key().mint("d")))
        assert server.hits == 1
        clock.advance(2)  # past the cache lifetime
        await authenticator.authenticate(bearer(rsa_key().mint("e")))
        assert server.hits == 2


async def test_concurrent_cold_start_fetches_once() -> None:
    server = JwksServer(jwks(rsa_key()))
    with server.running():
        authenticator = JwtAuthenticator(make_settings(jwt_jwks_url=server.url))
        tokens = [bearer(rsa_key().mint(f"user-{i}")) for i in range(20)]
        results = await asyncio.gather(*(authenticator.authenticate(t) for t in tokens))
        assert [r.user_id for r in results] == [f"user-{i}" for i in range(20)]
        assert server.hits == 1


async def test_key_rotation_refreshes_on_unknown_kid(clock: FakeClock) -> None:
    old, new = rsa_key("rot-old"), ec_key("rot-new")
    server = JwksServer(jwks(old))
    with server.running():
        authenticator = JwtAuthenticator(
            make_settings(jwt_jwks_url=server.url), jwks_min_refresh_seconds=30
        )
        await authenticator.authenticate(bearer(old.mint("alice")))
        server.document = jwks(new)  # the identity provider rotates
        # Within the rate-limit window the new kid is refused without asking the endpoint.
        assert await refused(authenticator, bearer(new.mint("alice"))) == "Unknown signing key"
        assert server.hits == 1
        clock.advance(31)
        assert (await authenticator.authenticate(bearer(new.mint("alice")))).user_id == "alice"
        assert server.hits == 2
        # The retired key is gone with the refreshed set.
        assert await refused(authenticator, bearer(old.mint("alice"))) == "Unknown signing key"


async def test_flood_of_random_kids_costs_one_fetch(clock: FakeClock) -> None:
    server = JwksServer(jwks(rsa_key()))
    attacker = rsa_key("flood")
    with server.running():
        authenticator = JwtAuthenticator(
            make_settings(jwt_jwks_url=server.url), jwks_min_refresh_seconds=30
        )
        await authenticator.authenticate(bearer(rsa_key().mint("alice")))
        clock.advance(60)  # the rate limit allows one refresh again
        tokens = [
            bearer(attacker.mint("x", headers={"kid": secrets.token_hex(8)})) for _ in range(50)
        ]
        results = await asyncio.gather(
            *(authenticator.authenticate(t) for t in tokens), return_exceptions=True
        )
        assert all(isinstance(r, AuthError) and r.message == "Unknown signing key" for r in results)
        assert server.hits == 2
        for token in tokens[:10]:  # sequential retries inside the window: still no fetch
            await refused(authenticator, token)
        assert server.hits == 2
        # Known keys keep working during the flood.
        assert (await authenticator.authenticate(bearer(rsa_key().mint("bob")))).user_id == "bob"


async def test_unavailable_jwks_refuses_then_recovers(clock: FakeClock) -> None:
    server = JwksServer(jwks(rsa_key()))
    server.status = 503
    with server.running():
        authenticator = JwtAuthenticator(
            make_settings(jwt_jwks_url=server.url), jwks_min_refresh_seconds=30
        )
        token = bearer(rsa_key().mint("alice"))
        assert await refused(authenticator, token) == "Signing keys are unavailable"
        assert await refused(authenticator, token) == "Signing keys are unavailable"
        assert server.hits == 1  # failures are rate-limited too
        server.status = 200
        clock.advance(31)
        assert (await authenticator.authenticate(token)).user_id == "alice"
        assert server.hits == 2


async def test_outage_after_expiry_keeps_serving_cached_keys(clock: FakeClock) -> None:
    server = JwksServer(jwks(rsa_key()))
    with server.running():
        authenticator = JwtAuthenticator(
            make_settings(jwt_jwks_url=server.url, jwks_cache_seconds=60)
        )
        token = bearer(rsa_key().mint("alice"))
        await authenticator.authenticate(token)
        server.status = 500
        clock.advance(120)
        assert (await authenticator.authenticate(token)).user_id == "alice"
        assert server.hits == 2


async def test_jwks_is_fetched_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    server = JwksServer(jwks(rsa_key()))
    fetch_threads: list[threading.Thread] = []
    real_fetch = auth.fetch_jwks

    def recording_fetch(url: str, timeout: float) -> Any:
        fetch_threads.append(threading.current_thread())
        return real_fetch(url, timeout)

    monkeypatch.setattr(auth, "fetch_jwks", recording_fetch)
    with server.running():
        authenticator = JwtAuthenticator(make_settings(jwt_jwks_url=server.url))
        await authenticator.authenticate(bearer(rsa_key().mint("alice")))
    assert fetch_threads
    assert fetch_threads[0] is not threading.current_thread()


def test_jwks_fetch_failure_reasons() -> None:
    server = JwksServer({"not": "a jwks"})
    with server.running():
        with pytest.raises(JwksUnavailable, match="no 'keys' list"):
            auth.fetch_jwks(server.url, timeout=5)
        server.status = 404
        with pytest.raises(JwksUnavailable, match="cannot fetch"):
            auth.fetch_jwks(server.url, timeout=5)


def test_parse_jwks_keeps_only_usable_signing_keys() -> None:
    good_rsa, good_ec = rsa_key().public_jwk(), ec_key().public_jwk()
    from cryptography.hazmat.primitives.asymmetric import ec
    from jwt.algorithms import ECAlgorithm, RSAAlgorithm

    p384 = ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP384R1()).public_key(), as_dict=True)
    private = RSAAlgorithm.to_jwk(rsa_key().private_key, as_dict=True)
    document = {
        "keys": [
            good_rsa,
            good_ec,
            {**good_rsa, "kid": "enc", "use": "enc"},
            {**good_rsa, "kid": "wrong-alg", "alg": "RS512"},
            {**good_rsa, "kid": None},
            {**p384, "kid": "p384"},
            {**rsa_key("small", bits=1024).public_jwk(), "kid": "small"},
            {**private, "kid": "private"},
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
            "not a key",
        ]
    }
    keys = parse_jwks(document)
    assert {key.key_id: key.algorithm_name for key in keys} == {
        good_rsa["kid"]: "RS256",
        good_ec["kid"]: "ES256",
    }
    with pytest.raises(JwksUnavailable):
        parse_jwks({"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"}]})


# --- build_authenticator ------------------------------------------------------------------------


def test_build_with_secret_or_jwks_is_jwt(jwks_server: JwksServer) -> None:
    assert isinstance(
        build_authenticator(make_settings(jwt_secret=TEST_JWT_SECRET)), JwtAuthenticator
    )
    assert isinstance(
        build_authenticator(make_settings(jwt_jwks_url=jwks_server.url), allow_dev_user=True),
        JwtAuthenticator,
    )


def test_build_refuses_to_start_without_auth_settings() -> None:
    with pytest.raises(ConfigurationError, match="refusing to start without JWT_SECRET"):
        build_authenticator(make_settings())


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"jwt_issuer": ISSUER}, "neither JWT_SECRET nor JWT_JWKS_URL"),
        ({"jwt_audience": AUDIENCE}, "neither JWT_SECRET nor JWT_JWKS_URL"),
        ({"jwt_secret": "short"}, "at least 32 bytes"),
    ],
)
def test_build_refuses_broken_auth_settings(overrides: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        build_authenticator(make_settings(**overrides), allow_dev_user=True)


async def test_dev_user_only_when_allowed_and_loudly(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="chatkit_backend.auth"):
        authenticator = build_authenticator(
            make_settings(dev_user_id="local-dev"), allow_dev_user=True
        )
    assert isinstance(authenticator, DevUserAuthenticator)
    assert "EVERY request is the development user 'local-dev'" in caplog.text
    assert "never deploy" in caplog.text
    for header in (None, "Bearer whatever", bearer(mint_hs256("alice"))):
        context = await authenticator.authenticate(header, request_id="r")
        assert (context.user_id, context.request_id) == ("local-dev", "r")


def test_secret_is_not_in_configuration_errors() -> None:
    with pytest.raises(ConfigurationError) as info:
        build_authenticator(make_settings(jwt_secret="tiny-secret"))
    assert "tiny-secret" not in str(info.value)


# --- JWT_SECRET_ARN: the deployed HS256 path ------------------------------------------------


async def test_hs256_secret_from_secrets_manager(monkeypatch: pytest.MonkeyPatch) -> None:
    """Deployed functions read the HS256 secret by ARN; tokens signed with it are accepted."""
    import boto3

    from tests.support.aws import REGION, fake_aws

    with fake_aws(monkeypatch):
        arn = boto3.client("secretsmanager", region_name=REGION).create_secret(
            Name="jwt-secret", SecretString=TEST_JWT_SECRET + "\n"
        )["ARN"]
        authenticator = build_authenticator(Settings(jwt_secret_arn=arn))
    context = await authenticator.authenticate(f"Bearer {mint_hs256('arn-user')}")
    assert context.user_id == "arn-user"
    with pytest.raises(AuthError):
        await authenticator.authenticate(f"Bearer {mint_hs256('x', secret='y' * 40)}")


def test_unreadable_jwt_secret_arn_refuses_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.support.aws import fake_aws

    with fake_aws(monkeypatch), pytest.raises(ConfigurationError, match="cannot read secret"):
        build_authenticator(
            Settings(jwt_secret_arn="arn:aws:secretsmanager:us-east-1:1:secret:nope")
        )
