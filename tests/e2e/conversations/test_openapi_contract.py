"""Schemathesis against the conversations function over real HTTP: the OpenAPI document is the
truth about every status and body shape the routes answer.

Every operation is fuzzed with valid and invalid inputs (positive and negative generation) under
all of schemathesis's checks: no 5xx, every status and body documented and conforming, invalid
input refused, valid input accepted. Each example runs as a fresh user, so generated ids never
name another example's rows. Derandomized: the same cases every run.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
import schemathesis
from chatkit_backend.settings import Settings
from hypothesis import HealthCheck, given, settings
from schemathesis import CheckFunction, GenerationMode
from schemathesis.generation.case import Case
from schemathesis.schemas import BaseSchema
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.support.servers import UvicornThread, conversations_server
from tests.support.tokens import TEST_JWT_SECRET, auth_header

pytestmark = pytest.mark.postgres_only

EXAMPLES_PER_OPERATION = 25
OPERATIONS = [
    ("GET", "/api/conversations"),
    ("POST", "/api/conversations"),
    ("GET", "/api/conversations/recent/first"),
    ("GET", "/api/conversations/{conversation_id}"),
    ("GET", "/api/conversations/{conversation_id}/messages"),
    ("PATCH", "/api/conversations/{conversation_id}"),
    ("DELETE", "/api/conversations/{conversation_id}"),
    ("GET", "/health"),
    ("DELETE", "/api/me"),
    ("GET", "/api/me/export"),
]


@pytest.fixture(scope="module")
def server(pg_url: str) -> Iterator[UvicornThread]:
    with conversations_server(Settings(database_url=pg_url, jwt_secret=TEST_JWT_SECRET)) as http:
        yield http


@pytest.fixture(scope="module")
def api_schema(server: UvicornThread) -> BaseSchema:
    return schemathesis.openapi.from_url(f"{server.url}/openapi.json")


def test_the_list_of_operations_is_complete(api_schema: BaseSchema) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]  # type: ignore[union-attr]
    documented = {(operation.method.upper(), operation.path) for operation in operations}
    assert documented == set(OPERATIONS)


WITHOUT_INPUTS = {
    ("GET", "/api/conversations/recent/first"),
    ("GET", "/health"),
    ("DELETE", "/api/me"),
    ("GET", "/api/me/export"),
}
"""No parameter or body to make invalid: negative generation has nothing to vary."""

CURSOR_OPERATIONS = {
    ("GET", "/api/conversations"),
    ("GET", "/api/conversations/{conversation_id}/messages"),
}
"""Cursors are opaque tokens: a well-formed one that no page issued is a 400 ("Invalid
cursor"), which no schema can say in advance, so these skip the one check that demands
every schema-valid request succeed."""


@pytest.mark.parametrize(
    ("method", "path", "mode"),
    [(*operation, GenerationMode.POSITIVE) for operation in OPERATIONS]
    + [(*op, GenerationMode.NEGATIVE) for op in OPERATIONS if op not in WITHOUT_INPUTS],
)
def test_every_operation_honours_its_documented_contract(
    api_schema: BaseSchema, server: UvicornThread, method: str, path: str, mode: GenerationMode
) -> None:
    operation = api_schema[path][method]
    excluded: list[CheckFunction] = (
        [positive_data_acceptance] if (method, path) in CURSOR_OPERATIONS else []
    )

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def honours_contract(case: Case) -> None:
        user = auth_header(f"fuzz-{secrets.token_hex(6)}")
        case.call_and_validate(
            base_url=server.url, headers=user, excluded_checks=excluded, timeout=30
        )

    honours_contract()
