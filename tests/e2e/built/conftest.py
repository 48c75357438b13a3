"""The built-artifact suite: ``sam build``'s output run the way Lambda runs it.

Each function runs from ``.aws-sam/build`` only, in an empty Python 3.12
(:mod:`tests.support.built_artifacts`); ``SAM_BUILD_DIR`` names another build folder. Every
test here is marked ``built``, which the default run deselects (pyproject's ``addopts``): a
stale build must not fail ``make test``. ``make check-artifacts`` builds first and then runs
``pytest -m built tests/e2e/built``; without a build the tests skip.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.support import built_artifacts
from tests.support.built_artifacts import BuiltFunction, OpenSandbox, Runtime, Sandbox
from tests.support.databases import scratch_database


@pytest.fixture(scope="session")
def build_dir() -> Path:
    path = Path(os.environ.get("SAM_BUILD_DIR", built_artifacts.BUILD_DIR)).resolve()
    if not built_artifacts.is_built(path):
        pytest.skip(f"no build at {path}: run `make check-artifacts` (it runs `sam build`)")
    return path


@pytest.fixture(scope="session")
def functions(build_dir: Path) -> dict[str, BuiltFunction]:
    return built_artifacts.load_functions(build_dir)


@pytest.fixture(scope="session")
def built_sizes(functions: dict[str, BuiltFunction]) -> dict[str, int]:
    """Bytes of each function with its layers, as built: measured before anything runs from the
    build (a run writes bytecode for the modules shipped as source)."""
    return {logical_id: function.size_bytes() for logical_id, function in functions.items()}


@pytest.fixture(scope="session")
def runtime(
    tmp_path_factory: pytest.TempPathFactory, build_dir: Path, built_sizes: dict[str, int]
) -> Runtime:
    return Runtime(
        tmp_path_factory.mktemp("lambda-runtime") / "venv", built_artifacts.find_python312()
    )


@pytest.fixture(scope="session")
def open_sandbox(runtime: Runtime, functions: dict[str, BuiltFunction]) -> Iterator[OpenSandbox]:
    """Starts warm sandboxes (closed at the end of the session); each must have imported its
    handler from the build and the standard library only."""
    with ExitStack() as opened:

        def open_one(logical_id: str, **environment: str) -> Sandbox:
            function = functions[logical_id]
            env = runtime.environment(function, **environment)
            box = opened.enter_context(built_artifacts.sandbox(runtime, function, env))
            assert not box.outside, (
                f"{logical_id} imported modules from outside the build: "
                + ", ".join(box.outside[:10])
            )
            return box

        yield open_one


@pytest.fixture(scope="session")
def database_url(open_sandbox: OpenSandbox) -> Iterator[str]:
    """A scratch database migrated by the built migration function (a plain upgrade)."""
    with scratch_database("ckb_artifacts") as url:
        open_sandbox("MigrationFunction", DATABASE_URL=url).invoke({"action": "upgrade"})
        yield url
