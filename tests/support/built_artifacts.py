"""The ``sam build`` output run the way Lambda runs it: from the built folders only.

:func:`load_functions` reads the built template (each function's code folder, its own layers'
``python/`` folders, its literal environment); :class:`Runtime` is an *empty* Python 3.12
virtualenv, the stand-in for the managed runtime, whose import path for a function is exactly
what Lambda assembles as ``/var/task`` and ``/opt/python``: nothing from the checkout or the
project's virtualenv is importable. :class:`Sandbox` is one warm function process in it
(``lambda_bootstrap.py --warm``), which also reports every module loaded from outside the build
and the standard library.

Used by the built-artifact suite (``tests/e2e/built``, ``make check-artifacts``) and by the
benchmarks that measure the same artifacts (``bench/sizes.py``, ``bench/cold_start.py``).
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cfnlint.decode import cfn_yaml

from tests.support.lambda_bootstrap import MARK
from tests.support.paths import REPO_ROOT

BUILD_DIR = REPO_ROOT / ".aws-sam" / "build"
BOOTSTRAP = Path(__file__).with_name("lambda_bootstrap.py")
LIMIT_MIB = 250
"""Lambda's limit on a function's unzipped code plus layers."""
GOAL_MIB = 150
"""The project's goal per function, reported when missed."""
MIB = 1024 * 1024
SANDBOX_TIMEOUT_SECONDS = 60.0
ADAPTER_ONLY = ("AWS_LAMBDA_EXEC_WRAPPER", "AWS_LWA_")
"""Environment of the Lambda Web Adapter, which does not run here (uvicorn serves directly)."""
SECRET_REFERENCES = ("DATABASE_SECRET_ARN", "OPENAI_API_KEY", "OPENAI_API_KEY_SECRET_ARN")
"""Template settings a local run goes without: it gets the database URL and the JWT secret
directly, and no model key (the references would send it to Secrets Manager)."""


class ArtifactError(Exception):
    """The built artifact (or the machine running it) cannot do what the check asked."""


@dataclass
class BuiltFunction:
    """One function of the built template, with what running it needs."""

    logical_id: str
    code_dir: Path
    handler: str
    layer_dirs: list[Path]
    environment: dict[str, str] = field(default_factory=dict)

    @property
    def import_path(self) -> str:
        return os.pathsep.join(str(path) for path in [self.code_dir, *self.layer_dirs])

    def size_bytes(self) -> int:
        return sum(_tree_size(path) for path in [self.code_dir, *self.layer_dirs])


def is_built(build_dir: Path = BUILD_DIR) -> bool:
    return (build_dir / "template.yaml").exists()


def load_functions(build_dir: Path = BUILD_DIR) -> dict[str, BuiltFunction]:
    """The functions of ``build_dir/template.yaml`` with their built folders and literal env."""
    template = cfn_yaml.load(str(build_dir / "template.yaml"))
    resources: dict[str, Any] = template["Resources"]
    global_env = _literal_env(template.get("Globals", {}).get("Function", {}))
    functions = {}
    for logical_id, resource in resources.items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        properties = resource["Properties"]
        layer_dirs = []
        for layer in properties.get("Layers", []):
            name = layer.get("Ref") if isinstance(layer, dict) else None
            if name in resources:  # the template's own layers; the Web Adapter is external
                content = resources[name]["Properties"]["ContentUri"]
                layer_dirs.append(build_dir / content / "python")
        functions[logical_id] = BuiltFunction(
            logical_id=logical_id,
            code_dir=build_dir / properties["CodeUri"],
            handler=properties["Handler"],
            layer_dirs=layer_dirs,
            environment={**global_env, **_literal_env(properties)},
        )
    return functions


def _literal_env(properties: dict[str, Any]) -> dict[str, str]:
    """The environment variables with literal values (those that need a deploy are left out)."""
    variables = properties.get("Environment", {}).get("Variables", {})
    return {key: str(value) for key, value in variables.items() if not isinstance(value, dict)}


def _tree_size(path: Path) -> int:
    files = (entry for entry in path.rglob("*") if entry.is_file() and not entry.is_symlink())
    return sum(entry.stat().st_size for entry in files)


def find_python312() -> str:
    """A working Python 3.12: ``PYTHON312``, ``python3.12`` on PATH, or pyenv's."""
    candidates = [os.environ.get("PYTHON312", ""), shutil.which("python3.12") or ""]
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.12*/bin/python3.12")))
    for candidate in filter(None, candidates):
        probe = subprocess.run(
            [candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 12))"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.stdout.strip() == "True":
            return candidate
    raise ArtifactError("no Python 3.12 found (set PYTHON312)")


class Runtime:
    """An empty Python 3.12 virtualenv: the managed runtime without the project's packages."""

    def __init__(self, directory: Path, python312: str) -> None:
        subprocess.run([python312, "-m", "venv", "--without-pip", str(directory)], check=True)
        self.bin_dir = directory / "bin"
        self.python = self.bin_dir / "python"
        paths = subprocess.run(
            [str(self.python), "-c", "import sysconfig; print(sysconfig.get_paths()['stdlib'])"],
            capture_output=True,
            text=True,
            check=True,
        )
        self.stdlib = paths.stdout.strip()

    def environment(self, function: BuiltFunction, **overrides: str) -> dict[str, str]:
        """What Lambda gives the function: its configuration (less :data:`SECRET_REFERENCES`)
        plus the runtime's variables."""
        env = {
            key: value
            for key, value in function.environment.items()
            if not key.startswith(ADAPTER_ONLY) and key not in SECRET_REFERENCES
        }
        env.update(
            PATH=f"{self.bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin",
            PYTHONPATH=function.import_path,
            LAMBDA_TASK_ROOT=str(function.code_dir),
            AWS_LAMBDA_FUNCTION_NAME=function.logical_id,
            AWS_REGION="us-east-1",
            AWS_DEFAULT_REGION="us-east-1",
            POWERTOOLS_TRACE_DISABLED="true",
            LANG="C.UTF-8",
        )
        env.update(overrides)
        return env


class Sandbox:
    """A warm function process: the handler imported once, then invoked per event.

    :attr:`outside` lists the modules the import loaded from neither the build nor the standard
    library (it must be empty for the artifact to be self-contained).
    """

    def __init__(self, runtime: Runtime, function: BuiltFunction, env: dict[str, str]) -> None:
        self.function = function
        roots = [str(function.code_dir.parent), runtime.stdlib]
        self._process = subprocess.Popen(
            [
                str(runtime.python),
                "-s",
                "-P",
                str(BOOTSTRAP),
                function.handler,
                str(SANDBOX_TIMEOUT_SECONDS),
                "--warm",
                *roots,
            ],
            cwd=function.code_dir,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.logs: list[str] = []
        self.outside: list[str] = self._read()["outside"]

    def invoke(self, event: dict[str, Any]) -> Any:
        """The handler's return value for ``event`` (:class:`ArtifactError` if it raised)."""
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps(event) + "\n")
        self._process.stdin.flush()
        reply = self._read()
        if not reply["ok"]:
            raise ArtifactError(f"{self.function.logical_id} raised {reply['error']}")
        return reply["result"]

    def _read(self) -> dict[str, Any]:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            if line.startswith(MARK):
                reply: dict[str, Any] = json.loads(line[len(MARK) :])
                return reply
            self.logs.append(line.rstrip())
        tail = "\n".join(self.logs[-30:])
        raise ArtifactError(f"{self.function.logical_id} exited before answering:\n{tail}")

    def close(self) -> None:
        if self._process.stdin:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=10)


@contextmanager
def sandbox(runtime: Runtime, function: BuiltFunction, env: dict[str, str]) -> Iterator[Sandbox]:
    box = Sandbox(runtime, function, env)
    try:
        yield box
    finally:
        box.close()


OpenSandbox = Callable[..., Sandbox]
"""``open_sandbox(logical_id, **environment)``: a warm sandbox of that built function (the
built-artifact suite's fixture)."""
