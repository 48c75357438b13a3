"""The store under test, once per backend (``any_database``: PostgreSQL and SQLite)."""

from __future__ import annotations

import pytest
from chatkit_backend.db import Database
from chatkit_backend.store import PostgresStore


@pytest.fixture
def database(any_database: Database) -> Database:
    return any_database


@pytest.fixture
def store(database: Database) -> PostgresStore:
    return PostgresStore(database)
