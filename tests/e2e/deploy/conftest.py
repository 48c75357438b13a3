"""One emulated AWS (moto server with the shims) per test module.

Per module, not per session: ``mock_aws`` (used by other tests of the run) resets moto's
process-wide backends when it starts and stops, which would empty a long-lived server too.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.emulated_deploy import EmulatedAws, emulated_aws


@pytest.fixture(scope="module")
def aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatedAws]:
    with emulated_aws(tmp_path_factory.mktemp("emulated")) as running:
        yield running
