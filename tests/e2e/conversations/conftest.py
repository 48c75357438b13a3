"""The conversations function over real HTTP: each module serves its app as ``server``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.support.servers import UvicornThread, client_of


@pytest.fixture
async def client(server: UvicornThread) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the module's ``server``."""
    async with client_of(server) as client:
        yield client
