"""Bearer-token authentication: who is asking, from a verified JWT and nothing else.

Function URLs are ``AuthType: NONE``, so this is the only gate. The accepted algorithm follows
from the configured keys, never the token (``HS256`` only with a secret, ``RS256``/``ES256`` only
with JWKS keys, each key one algorithm), so ``alg: none``, algorithm confusion and keys embedded
in the header never verify. ``exp`` and ``sub`` are required. PyJWT fetches and parses the JWKS
(off the event loop); an unknown ``kid`` refreshes it at most once per ``min_refresh_seconds``.
Errors say what is wrong with a token without echoing it.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A public key from the JWKS and the one algorithm it may verify."""

    kid: str
    algorithm: str
    key: Any


class JwksUnavailable(Exception):
    """The JWKS could not be fetched or held no usable key (the reason is safe to log)."""


def parse_jwks(document: Any) -> dict[str, SigningKey]:
    """Usable signing keys by ``kid``: RSA (>= 2048 bits) for RS256, EC P-256 for ES256.

    PyJWT parses the JWKs; this keeps only what the policy accepts. Keys for encryption, of other
    types or curves, without a ``kid``, private, or whose ``alg`` disagrees with their type are
    skipped: a key set may legitimately carry keys this service never accepts.
    """
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise JwksUnavailable("JWKS document has no 'keys' list")
    try:
        key_set = PyJWKSet.from_dict(
            {"keys": [jwk for jwk in document["keys"] if isinstance(jwk, dict)]}
        )
    except jwt.PyJWTError:
        key_set = PyJWKSet([])
    keys = {key.kid: key for jwk in key_set.keys if (key := _signing_key(jwk)) is not None}
    if not keys:
        raise JwksUnavailable("JWKS holds no usable RS256/ES256 signing key with a kid")
    return keys


def _signing_key(jwk: PyJWK) -> SigningKey | None:
    if not jwk.key_id or (jwk.public_key_use or "sig") != "sig":
        return None
    key = jwk.key
    if isinstance(key, rsa.RSAPublicKey) and key.key_size >= MIN_RSA_BITS:
        algorithm = "RS256"
    elif isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        algorithm = "ES256"
    else:  # other types and sizes, and private keys: never accepted
        return None
    if jwk.algorithm_name != algorithm:
        return None
    return SigningKey(kid=jwk.key_id, algorithm=algorithm, key=key)


def fetch_jwks(url: str, timeout: float) -> dict[str, SigningKey]:
    """Blocking fetch (PyJWT's ``PyJWKClient``) and parse of the JWKS; run it in a worker thread."""
    client = PyJWKClient(
        url,
        cache_keys=False,
        cache_jwk_set=False,  # JwksCache decides when to fetch, with a clock tests control
        timeout=int(timeout),
        headers={"Accept": "application/json"},
    )
    try:
        document = client.fetch_data()
    except PyJWKClientError as exc:
        raise JwksUnavailable(f"cannot fetch JWKS: {exc}") from exc
    except ValueError as exc:
        raise JwksUnavailable("JWKS document is not JSON") from exc
    return parse_jwks(document)


class JwksCache:
    """Signing keys from a JWKS URL: cached, refreshed on expiry or unknown ``kid``, rate-limited.

    At most one fetch runs at a time and at most one starts per ``min_refresh_seconds`` (whatever
    triggered it: expiry, an unknown ``kid`` or a failed attempt). When the endpoint fails, the
    keys already held keep working; when no key was ever fetched, tokens are refused.
    """

    def __init__(
        self,
        url: str,
        *,
        max_age_seconds: float,
        min_refresh_seconds: float = JWKS_MIN_REFRESH_SECONDS,
        timeout_seconds: float = JWKS_TIMEOUT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = url
        self._max_age = max_age_seconds
        self._min_refresh = min_refresh_seconds
        self._timeout = timeout_seconds
        self._clock = clock
        self._keys: dict[str, SigningKey] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None

    async def get(self, kid: str) -> SigningKey:
        key = self._keys.get(kid)
        if key is None or self._is_stale():
            await self._refresh()
            key = self._keys.get(kid)
        if key is not None:
            return key
        if not self._keys:
            raise AuthError("Signing keys are unavailable")
        raise AuthError("Unknown signing key")

    def expire(self) -> None:
        """Treat the keys as stale and lift the refresh rate limit (after a SnapStart restore).

        The keys held stay as the fallback, so tokens still verify if the endpoint is down; the
        next token fetches the key set again instead of trusting one frozen into the snapshot.
        """
        self._fetched_at = None
        self._attempted_at = None

    def _is_stale(self) -> bool:
        return self._fetched_at is None or self._clock() - self._fetched_at >= self._max_age

    def _loop_lock(self) -> asyncio.Lock:
        """One lock per event loop (Mangum and tests may run more than one loop in a process)."""
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:
            self._lock, self._lock_loop = asyncio.Lock(), loop
        return self._lock

    async def _refresh(self) -> None:
        async with self._loop_lock():
            now = self._clock()
            if self._attempted_at is not None and now - self._attempted_at < self._min_refresh:
                return  # just refreshed (by us or a concurrent request), or rate-limited
            self._attempted_at = now
            try:
                keys = await asyncio.to_thread(fetch_jwks, self._url, self._timeout)
            except JwksUnavailable as exc:
                log.warning("JWKS refresh failed; keeping %d cached keys: %s", len(self._keys), exc)
                return
            self._keys, self._fetched_at = keys, self._clock()


# --- authenticators -----------------------------------------------------------------------------


def _configured_secret(settings: Settings) -> str | None:
    """The HS256 secret: ``JWT_SECRET`` locally, else the ``JWT_SECRET_ARN`` secret (deployed).

    Read once per cold start (the authenticator is built at import time), through the cached
    Powertools parameters client, so the value never sits in the function's environment.
    """
    if settings.jwt_secret is not None:
        return settings.jwt_secret.get_secret_value()
    if settings.jwt_secret_arn is not None:
        from .secrets import get_secret_value

        return get_secret_value(settings.jwt_secret_arn).strip()
    return None


def _hmac_secret(settings: Settings) -> bytes | None:
    """The HS256 key, refused when shorter than :data:`MIN_SECRET_BYTES`."""
    secret_text = _configured_secret(settings)
    if secret_text is None:
        return None
    secret = secret_text.encode()
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
        jwks_timeout_seconds: float = JWKS_TIMEOUT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not settings.auth_configured:
            raise ConfigurationError(
                "JwtAuthenticator needs JWT_SECRET, JWT_SECRET_ARN or JWT_JWKS_URL"
            )
        self._secret = _hmac_secret(settings)
        self._jwks: JwksCache | None = None
        if settings.jwt_jwks_url is not None:
            if not settings.jwt_jwks_url.lower().startswith(("https://", "http://")):
                raise ConfigurationError("JWT_JWKS_URL must be an http(s) URL")
            self._jwks = JwksCache(
                settings.jwt_jwks_url,
                max_age_seconds=settings.jwks_cache_seconds,
                min_refresh_seconds=jwks_min_refresh_seconds,
                timeout_seconds=jwks_timeout_seconds,
                clock=clock,
            )
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._leeway = settings.jwt_leeway_seconds

    def refresh_after_restore(self, settings: Settings) -> None:
        """Forget what a SnapStart snapshot froze: the JWKS goes stale, the secret is re-read.

        Without SnapStart the secret is read once per cold start; with it, once per published
        version, so a rotated ``JWT_SECRET_ARN`` would never be seen. Re-reading it here costs one
        ``GetSecretValue`` per restore (the Powertools cache is cleared first by the caller).
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
        algorithm, key = await self._key_for(header)
        claims = self._verify(token, key, algorithm)
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
            signing_key = await self._jwks.get(kid)
            if signing_key.algorithm != algorithm:
                raise AuthError(f"Token algorithm {algorithm} is not allowed for this key")
            return algorithm, signing_key.key
        shown = algorithm if isinstance(algorithm, str) and _PRINTABLE_ALG.match(algorithm) else "?"
        raise AuthError(f"Token algorithm {shown} is not allowed")

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


_MISSING_CLAIM_MESSAGES = {
    "exp": "Token has no expiry (exp)",
    "sub": "Token has no subject (sub)",
    "iss": "Token has no issuer (iss)",
    "aud": "Token has no audience (aud)",
}


def _describe(exc: jwt.PyJWTError) -> str:
    """A client-safe reason for a PyJWT refusal (order matters: subclasses first)."""
    if isinstance(exc, jwt.ExpiredSignatureError):
        return "Token has expired"
    if isinstance(exc, jwt.ImmatureSignatureError):
        return "Token is not yet valid"
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return _MISSING_CLAIM_MESSAGES.get(exc.claim, "Token lacks a required claim")
    if isinstance(exc, jwt.InvalidIssuerError):
        return "Invalid token issuer"
    if isinstance(exc, jwt.InvalidAudienceError):
        return "Invalid token audience"
    if isinstance(exc, jwt.exceptions.InvalidSubjectError):
        return "Invalid token subject"
    if isinstance(exc, jwt.InvalidSignatureError):
        return "Invalid token signature"
    if isinstance(exc, jwt.InvalidAlgorithmError):
        return "Token algorithm is not allowed"
    if isinstance(exc, jwt.DecodeError):
        return "Malformed token"
    return "Invalid token"


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
