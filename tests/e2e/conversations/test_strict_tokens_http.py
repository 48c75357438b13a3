"""A deployed-stage server (``STAGE=prod``) over real HTTP refuses every token that is valid in
all ways but one: another audience, another issuer, no audience, a lifetime over
``JWT_MAX_LIFETIME_SECONDS``, a ``typ`` that is not a JWT or an access token. The control token
(and an RFC 9068 ``at+jwt``) is accepted, so each refusal is that one difference."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from chatkit_backend.settings import Settings
from pydantic import SecretStr

from tests.support.servers import UvicornThread, conversations_server
from tests.support.tokens import TEST_JWT_SECRET, mint_hs256

ISSUER = "https://idp.example.com/"
AUDIENCE = "chatkit-backend"
DAY = 24 * 3600


@pytest.fixture(scope="module")
def server(pg_url: str) -> Iterator[UvicornThread]:
    settings = Settings(
        stage="prod",
        database_url=pg_url,
        jwt_secret=SecretStr(TEST_JWT_SECRET),
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
    )
    with conversations_server(settings) as running:
        yield running


def token(headers: dict[str, Any] | None = None, **claims: Any) -> str:
    values: dict[str, Any] = {"iss": ISSUER, "aud": AUDIENCE, **claims}
    return mint_hs256("strict-user", headers=headers, **values)


async def status(client: httpx.AsyncClient, bearer: str) -> tuple[int, str]:
    response = await client.get("/api/conversations", headers={"Authorization": f"Bearer {bearer}"})
    return response.status_code, response.json().get("detail", "")


async def test_the_control_token_and_an_access_token_type_are_accepted(
    client: httpx.AsyncClient,
) -> None:
    now = int(time.time())
    assert (await status(client, token()))[0] == 200
    assert (await status(client, token(headers={"typ": "at+jwt"})))[0] == 200
    assert (await status(client, token(iat=now, exp=now + DAY)))[0] == 200


@pytest.mark.parametrize(
    ("variant", "reason"),
    [
        ({"aud": "some-other-app"}, "Invalid token audience"),
        ({"aud": None}, "audience"),
        ({"iss": "https://evil.example.com/"}, "Invalid token issuer"),
        ({"iss": None}, "issuer"),
        ({"exp": "ten-years"}, "lifetime"),
        ({"exp": "two-days-no-iat"}, "lifetime"),
    ],
)
async def test_one_wrong_claim_is_a_401(
    client: httpx.AsyncClient, variant: dict[str, Any], reason: str
) -> None:
    now = int(time.time())
    if variant.get("exp") == "ten-years":
        variant = {"iat": now, "exp": now + 3650 * DAY}
    elif variant.get("exp") == "two-days-no-iat":
        variant = {"iat": None, "exp": now + 2 * DAY}
    code, detail = await status(client, token(**variant))
    assert code == 401
    assert reason in detail


@pytest.mark.parametrize("typ", ["JWE", "dpop+jwt", "id_token", "logout+jwt", 7])
async def test_a_token_of_another_type_is_a_401(client: httpx.AsyncClient, typ: Any) -> None:
    code, detail = await status(client, token(headers={"typ": typ}))
    assert (code, detail) == (401, "Token type is not accepted")
