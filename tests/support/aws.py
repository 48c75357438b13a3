"""Moto-backed AWS for tests: fake credentials, one region, and no Powertools cache leaking.

Powertools ``parameters`` keeps a process-wide cache (and a client per provider); clearing it
before and after each use keeps one test's secrets from answering another's.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from aws_lambda_powertools.utilities import parameters
from moto import mock_aws

REGION = "us-east-1"


@contextmanager
def fake_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    parameters.clear_caches()
    try:
        with mock_aws():
            yield
    finally:
        parameters.clear_caches()
