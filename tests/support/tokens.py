"""Tokens and keys for tests: HS256 with a fixed test secret, RS256/ES256 key pairs and JWKS.

Usage::

    settings = Settings(jwt_secret=TEST_JWT_SECRET)
    client.get("/api/conversations", headers=auth_header("alice"))

Keys are generated once per kid per process (RSA generation is slow enough to matter).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from functools import cache
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

TEST_JWT_SECRET = "test-only-hs256-secret-0123456789abcdef"
"""HS256 secret of the test suites (>= 32 bytes, as the authenticator requires)."""

TOKEN_LIFETIME_SECONDS = 3600


def claims_for(sub: str | None, **claims: Any) -> dict[str, Any]:
    """``sub``, ``iat`` and a one-hour ``exp``, overridden by ``claims``; a ``None`` value drops
    the claim (``sub=None`` or ``exp=None`` make a token without it)."""
    now = int(time.time())
    payload: dict[str, Any] = {"sub": sub, "iat": now, "exp": now + TOKEN_LIFETIME_SECONDS}
    payload.update(claims)
    return {name: value for name, value in payload.items() if value is not None}


def mint_hs256(
    sub: str | None,
    secret: str = TEST_JWT_SECRET,
    *,
    headers: dict[str, Any] | None = None,
    **claims: Any,
) -> str:
    """An HS256 token for ``sub`` (valid for an hour unless ``exp=`` says otherwise)."""
    return jwt.encode(claims_for(sub, **claims), secret, algorithm="HS256", headers=headers)


def auth_header(sub: str, **claims: Any) -> dict[str, str]:
    """``{"Authorization": "Bearer <HS256 token for sub>"}`` signed with :data:`TEST_JWT_SECRET`."""
    return {"Authorization": f"Bearer {mint_hs256(sub, **claims)}"}


@dataclass(frozen=True)
class KeyPair:
    """An asymmetric signing key with its public JWK (``alg`` is RS256 or ES256)."""

    kid: str
    alg: str
    private_key: Any

    def public_jwk(self) -> dict[str, Any]:
        algorithm = RSAAlgorithm if self.alg == "RS256" else ECAlgorithm
        jwk: dict[str, Any] = algorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        return {**jwk, "kid": self.kid, "alg": self.alg, "use": "sig"}

    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def mint(self, sub: str | None, *, headers: dict[str, Any] | None = None, **claims: Any) -> str:
        """A token signed with this key, ``kid`` in the header (override through ``headers``)."""
        return jwt.encode(
            claims_for(sub, **claims),
            self.private_key,
            algorithm=self.alg,
            headers={"kid": self.kid, **(headers or {})},
        )


@cache
def rsa_key(kid: str = "rsa-1", bits: int = 2048) -> KeyPair:
    return KeyPair(kid, "RS256", rsa.generate_private_key(public_exponent=65537, key_size=bits))


@cache
def ec_key(kid: str = "ec-1") -> KeyPair:
    return KeyPair(kid, "ES256", ec.generate_private_key(ec.SECP256R1()))


def jwks(*keys: KeyPair) -> dict[str, Any]:
    """A JWKS document publishing the public halves of ``keys``."""
    return {"keys": [key.public_jwk() for key in keys]}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict[str, Any], payload: dict[str, Any], hmac_key: bytes | None = None) -> str:
    """A hand-made token PyJWT would refuse to produce: HMAC-SHA256 over the signing input with
    any bytes as the key (algorithm confusion: a public key PEM), or no signature at all when
    ``hmac_key`` is None (``alg: none``)."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    if hmac_key is None:
        return f"{signing_input}."
    signature = hmac.new(hmac_key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"
