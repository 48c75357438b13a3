"""One emulated AWS (moto server with the shims) for every deploy test of the run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.emulated_deploy import EmulatedAws, emulated_aws


@pytest.fixture(scope="session")
def aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatedAws]:
    with emulated_aws(tmp_path_factory.mktemp("emulated")) as running:
        yield running
