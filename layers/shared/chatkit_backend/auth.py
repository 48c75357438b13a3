"""Bearer-token authentication: who is asking, from a verified JWT and nothing else.

Function URLs are ``AuthType: NONE``, so this is the only gate. The accepted algorithm follows
from the configured keys, never the token (``HS256`` only with a secret, ``RS256``/``ES256`` only
with JWKS keys, each key one algorithm), so ``alg: none``, algorithm confusion and keys embedded
in the header never verify. ``exp`` and ``sub`` are required, a lifetime (``exp - iat``, or
``exp - now`` without ``iat``) over ``JWT_MAX_LIFETIME_SECONDS`` is refused (a stolen long-lived
token would work for years), and a ``typ`` header, when present, must name a JWT or an access
token (RFC 9068), not an ID token, a DPoP proof or anything else. PyJWT fetches, caches and
refreshes the JWKS (off the event loop). Errors say what is wrong with a token without echoing it.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from collections.abc import Mapping
from typing import Any, Protocol

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt import PyJWK, PyJWKClient, PyJWKClientError, PyJWKSet

from .caller import Caller
from .errors import AuthError, ConfigurationError
from .settings import Settings

log = logging.getLogger(__name__)

HMAC_ALGORITHM = "HS256"
JWKS_ALGORITHMS = ("RS256", "ES256")
MIN_SECRET_BYTES = 32
"""RFC 7518 section 3.2: an HS256 key must be at least as long as the hash (256 bits)."""
MIN_RSA_BITS = 2048
MAX_TOKEN_CHARS = 16_384
MAX_SUBJECT_CHARS = 255
"""The width of every ``user_id`` column."""
JWKS_MIN_REFRESH_SECONDS = 30.0
JWKS_TIMEOUT_SECONDS = 5.0
_JWKS_HEADERS = {"Accept": "application/json"}

ACCEPTED_TOKEN_TYPES = frozenset({"jwt", "at+jwt", "application/at+jwt", "application/jwt"})
"""``typ`` header values accepted (compared case-insensitively); no ``typ`` is accepted too."""

_BEARER = re.compile(r"^\s*bearer\s+(\S+)\s*$", re.IGNORECASE)
_PRINTABLE_ALG = re.compile(r"^[A-Za-z0-9_-]{1,16}$")


class Authenticator(Protocol):
    """Turns the ``Authorization`` header into a :class:`Caller` or raises ``AuthError``."""

    async def authenticate(
        self, authorization: str | None, request_id: str | None = None
    ) -> Caller: ...


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header (scheme case-insensitive)."""
    if authorization is None or not authorization.strip():
        raise AuthError("Missing Authorization header")
    match = _BEARER.match(authorization)
    if match is None:
        raise AuthError("Authorization header is not a Bearer token")
    token = match.group(1)
    if len(token) > MAX_TOKEN_CHARS:
        raise AuthError("Malformed token")
    return token


# --- JWKS ---------------------------------------------------------------------------------------


class JwksUnavailable(Exception):
    """The JWKS could not be fetched or held no usable key (the reason is safe to log)."""


def parse_jwks(document: Any) -> PyJWKSet:
    """The usable signing keys: RSA (>= 2048 bits) for RS256, EC P-256 for ES256, each with a kid.

    Keys for encryption, of other types or curves, private, or whose ``alg`` disagrees with their
    type are skipped: a key set may legitimately carry keys this service never accepts.
    """
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise JwksUnavailable("JWKS document has no 'keys' list")
    usable = [jwk for jwk in document["keys"] if _algorithm_of(jwk) is not None]
    if not usable:
        raise JwksUnavailable("JWKS holds no usable RS256/ES256 signing key with a kid")
    return PyJWKSet(usable)


def _algorithm_of(jwk: object) -> str | None:
    """The one algorithm a JWK may verify under the key policy, or ``None`` for a refused key."""
    if not isinstance(jwk, dict) or not jwk.get("kid") or (jwk.get("use") or "sig") != "sig":
        return None
    try:
        key = PyJWK(jwk).key
    except jwt.PyJWTError:
        return None
    if isinstance(key, rsa.RSAPublicKey) and key.key_size >= MIN_RSA_BITS:
        algorithm = "RS256"
    elif isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        algorithm = "ES256"
    else:  # other types and sizes, and private keys: never accepted
        return None
    return algorithm if jwk.get("alg", algorithm) == algorithm else None


def fetch_jwks(url: str, timeout: float) -> PyJWKSet:
    """One blocking fetch of the key set (PyJWT's HTTP), reduced to the usable keys."""
    client = PyJWKClient(url, cache_jwk_set=False, timeout=timeout, headers=_JWKS_HEADERS)
    try:
        document = client.fetch_data()
    except PyJWKClientError as exc:
        raise JwksUnavailable(f"cannot fetch JWKS: {exc}") from exc
    except ValueError as exc:
        raise JwksUnavailable("JWKS document is not JSON") from exc
    return parse_jwks(document)


class JwksClient(PyJWKClient):
    """PyJWT's JWKS client, which caches the set for ``lifespan`` seconds, refetches it for an
    unknown ``kid`` at most once per ``cooldown_duration`` and serialises fetches, plus what it
    lacks: the key policy, failed fetches rate-limited too, the last good keys served while the
    endpoint fails (refused only when none was ever fetched), and :meth:`expire`.
    """

    def __init__(self, url: str, *, lifespan: float, cooldown: float, timeout: float) -> None:
        super().__init__(url, lifespan=lifespan, cooldown_duration=cooldown, timeout=timeout)
        self._last_good: PyJWKSet | None = None
        self._retry_at = -math.inf

    def fetch_data(self) -> PyJWKSet:
        if time.monotonic() < self._retry_at:
            raise JwksUnavailable("JWKS endpoint failed moments ago")
        try:
            self._last_good = fetch_jwks(self.uri, self.timeout)
        except JwksUnavailable:
            self._retry_at = time.monotonic() + self.cooldown_duration
            raise
        self._last_successful_fetch = time.monotonic()  # starts PyJWT's cooldown, as its fetch does
        return self._last_good

    def get_jwk_set(self, refresh: bool = False) -> PyJWKSet:
        try:
            return super().get_jwk_set(refresh)
        except JwksUnavailable as exc:
            if self._last_good is None:
                raise
            log.warning("JWKS refresh failed; keeping the keys fetched before: %s", exc)
            return self._last_good

    def expire(self) -> None:
        """Drop the cached set and lift the rate limits (after a SnapStart restore).

        The last good keys stay as the fallback, so tokens still verify if the endpoint is down;
        the next token fetches the key set again instead of trusting one frozen into the snapshot.
        """
        with self._client_lock:
            if self.jwk_set_cache is not None:
                self.jwk_set_cache.put(None)
            self._last_successful_fetch, self._retry_at = None, -math.inf


# --- authenticators -----------------------------------------------------------------------------


def _hmac_secret(settings: Settings) -> bytes | None:
    """The HS256 key: ``JWT_SECRET`` locally, else the ``JWT_SECRET_ARN`` secret (deployed).

    The secret is read through the cached Powertools client, so it never sits in the function's
    environment, and refused when shorter than :data:`MIN_SECRET_BYTES`.
    """
    if settings.jwt_secret is not None:
        secret = settings.jwt_secret.get_secret_value().encode()
    elif settings.jwt_secret_arn is not None:
        from .secrets import get_secret_value

        secret = get_secret_value(settings.jwt_secret_arn).strip().encode()
    else:
        return None
    if len(secret) < MIN_SECRET_BYTES:
        raise ConfigurationError(f"JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes for HS256")
    return secret


class JwtAuthenticator:
    """Verifies ``Authorization: Bearer <JWT>``; the user id is the token's ``sub``.

    With both ``JWT_SECRET`` and ``JWT_JWKS_URL`` configured, the token's ``alg`` picks the family
    (HS256 -> the secret, RS256/ES256 -> the JWKS); within a family the key decides.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        jwks_min_refresh_seconds: float = JWKS_MIN_REFRESH_SECONDS,
    ) -> None:
        if not settings.auth_configured:
            raise ConfigurationError(
                "JwtAuthenticator needs JWT_SECRET, JWT_SECRET_ARN or JWT_JWKS_URL"
            )
        self._secret = _hmac_secret(settings)
        self._jwks: JwksClient | None = None
        if settings.jwt_jwks_url is not None:
            try:
                self._jwks = JwksClient(
                    settings.jwt_jwks_url,
                    lifespan=settings.jwks_cache_seconds,
                    cooldown=jwks_min_refresh_seconds,
                    timeout=JWKS_TIMEOUT_SECONDS,
                )
            except PyJWKClientError:  # PyJWT accepts only http(s)
                raise ConfigurationError("JWT_JWKS_URL must be an http(s) URL") from None
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._leeway = settings.jwt_leeway_seconds
        self._max_lifetime = settings.jwt_max_lifetime_seconds

    def refresh_after_restore(self, settings: Settings) -> None:
        """Forget what a SnapStart snapshot froze: the JWKS goes stale, the secret is re-read.

        Under SnapStart the init phase runs once per published version, so a rotated
        ``JWT_SECRET_ARN`` is only seen when re-read here (the caller clears Powertools' cache).
        """
        if self._jwks is not None:
            self._jwks.expire()
        if settings.jwt_secret is None and settings.jwt_secret_arn is not None:
            self._secret = _hmac_secret(settings)

    async def authenticate(
        self, authorization: str | None, request_id: str | None = None
    ) -> Caller:
        token = bearer_token(authorization)
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthError("Malformed token") from None
        token_type = header.get("typ")
        if token_type is not None and (
            not isinstance(token_type, str) or token_type.lower() not in ACCEPTED_TOKEN_TYPES
        ):
            raise AuthError("Token type is not accepted")
        algorithm, key = await self._key_for(header)
        claims = self._verify(token, key, algorithm)
        self._check_lifetime(claims)
        subject = claims["sub"]
        if not subject or len(subject) > MAX_SUBJECT_CHARS:
            raise AuthError("Invalid token subject")
        return Caller(user_id=subject, bearer_token=token, request_id=request_id)

    async def _key_for(self, header: Mapping[str, Any]) -> tuple[str, Any]:
        """The algorithm and key to verify with, chosen by configuration (the header only asks)."""
        algorithm = header.get("alg")
        if algorithm == HMAC_ALGORITHM and self._secret is not None:
            return algorithm, self._secret
        if algorithm in JWKS_ALGORITHMS and self._jwks is not None:
            kid = header.get("kid")
            if not isinstance(kid, str) or not kid:
                raise AuthError("Token has no key id (kid)")
            try:  # off the event loop: a lookup may fetch the key set
                signing_key = await asyncio.to_thread(self._jwks.get_signing_key, kid)
            except JwksUnavailable:
                raise AuthError("Signing keys are unavailable") from None
            except PyJWKClientError:
                raise AuthError("Unknown signing key") from None
            if signing_key.algorithm_name != algorithm:
                raise AuthError(f"Token algorithm {algorithm} is not allowed for this key")
            return algorithm, signing_key.key
        shown = algorithm if isinstance(algorithm, str) and _PRINTABLE_ALG.match(algorithm) else "?"
        raise AuthError(f"Token algorithm {shown} is not allowed")

    def _check_lifetime(self, claims: Mapping[str, Any]) -> None:
        """``exp`` at most ``JWT_MAX_LIFETIME_SECONDS`` after ``iat`` (or after now, without it)."""
        issued = claims.get("iat")
        start = issued if isinstance(issued, int | float) else time.time()
        if claims["exp"] - start > self._max_lifetime + self._leeway:
            raise AuthError("Token lifetime is longer than this service accepts")

    def _verify(self, token: str, key: Any, algorithm: str) -> dict[str, Any]:
        try:
            return jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                issuer=self._issuer,
                audience=self._audience,
                leeway=self._leeway,
                options={"require": ["exp", "sub"], "verify_aud": self._audience is not None},
            )
        except jwt.PyJWTError as exc:
            raise AuthError(_describe(exc)) from None


_CLAIM_NAMES = {"exp": "expiry", "sub": "subject", "iss": "issuer", "aud": "audience"}


_REFUSALS: tuple[tuple[type[jwt.PyJWTError], str], ...] = (  # subclasses before their bases
    (jwt.ExpiredSignatureError, "Token has expired"),
    (jwt.ImmatureSignatureError, "Token is not yet valid"),
    (jwt.InvalidIssuerError, "Invalid token issuer"),
    (jwt.InvalidAudienceError, "Invalid token audience"),
    (jwt.exceptions.InvalidSubjectError, "Invalid token subject"),
    (jwt.InvalidSignatureError, "Invalid token signature"),
    (jwt.InvalidAlgorithmError, "Token algorithm is not allowed"),
    (jwt.DecodeError, "Malformed token"),
)


def _describe(exc: jwt.PyJWTError) -> str:
    """A client-safe reason for a PyJWT refusal."""
    if isinstance(exc, jwt.MissingRequiredClaimError):
        name = _CLAIM_NAMES.get(exc.claim)
        return f"Token has no {name} ({exc.claim})" if name else "Token lacks a required claim"
    return next((text for kind, text in _REFUSALS if isinstance(exc, kind)), "Invalid token")


class DevUserAuthenticator:
    """Every request is the fixed development user (local dev server without JWT settings only)."""

    def __init__(self, user_id: str) -> None:
        self.user_id = user_id

    async def authenticate(
        self, authorization: str | None, request_id: str | None = None
    ) -> Caller:
        return Caller(user_id=self.user_id, request_id=request_id)


def build_authenticator(settings: Settings, *, allow_dev_user: bool = False) -> Authenticator:
    """The authenticator the settings ask for; refuses to run unauthenticated unless allowed.

    Deployed functions call this with ``allow_dev_user=False`` at import time, so a function
    without ``JWT_SECRET``/``JWT_JWKS_URL`` fails its cold start instead of serving anyone.
    """
    if settings.auth_configured:
        return JwtAuthenticator(settings)
    if settings.jwt_issuer is not None or settings.jwt_audience is not None:
        raise ConfigurationError(
            "JWT_ISSUER/JWT_AUDIENCE are set but neither JWT_SECRET nor JWT_JWKS_URL is"
        )
    if not allow_dev_user:
        raise ConfigurationError(
            "refusing to start without JWT_SECRET, JWT_SECRET_ARN or JWT_JWKS_URL"
        )
    log.warning(
        "AUTHENTICATION IS OFF: no JWT setting (JWT_SECRET, JWT_SECRET_ARN, JWT_JWKS_URL), "
        "so EVERY request is the development user %r. This is for the local dev server only; "
        "never deploy like this.",
        settings.dev_user_id,
    )
    return DevUserAuthenticator(settings.dev_user_id)
