"""Unzipped size of each built function with its layers, from the ``sam build`` output.

    python -m bench.sizes            # reads .aws-sam/build (prints "not built" when missing)
    python -m bench.sizes --build    # runs `make build` first when the build is missing

The functions, their code folders and their layers come from the built template, read by
:mod:`tests.support.built_artifacts` (as the built-artifact suite that CI runs on the same
artifacts reads it); the baseline is
one bundle holding everything: both layers and every function's code (what a single function
would ship), measured from the same build.
"""

from __future__ import annotations

import argparse
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.support.built_artifacts import (
    BUILD_DIR,
    GOAL_MIB,
    LIMIT_MIB,
    MIB,
    BuiltFunction,
    is_built,
    load_functions,
)

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Sizes:
    """MiB per function (its code plus its layers), the all-in-one bundle, and the limits."""

    functions: dict[str, float]
    all_in_one: float
    limit: float
    goal: float


def build() -> None:
    """``make build`` (sam build), as CI does before its artifact checks.

    Run outside the virtualenv the bench itself runs in (``uv run`` puts it first on ``PATH``):
    the Makefile's ``python3 -m uv`` is the machine's Python, which has uv.
    """
    venv = os.environ.get("VIRTUAL_ENV")
    env = {key: value for key, value in os.environ.items() if key != "VIRTUAL_ENV"}
    if venv:
        venv_bin = str(Path(venv) / "bin")
        env["PATH"] = os.pathsep.join(
            part for part in env.get("PATH", "").split(os.pathsep) if part != venv_bin
        )
    subprocess.run(["make", "build"], cwd=ROOT, check=True, env=env)


def measure(build_dir: Path = BUILD_DIR) -> Sizes:
    functions = load_functions(build_dir)
    folders = sorted({path for f in functions.values() for path in (f.code_dir, *f.layer_dirs)})
    bundle = BuiltFunction("AllInOne", folders[0], "", layer_dirs=folders[1:])
    return Sizes(
        functions={
            function.logical_id.removesuffix("Function"): function.size_bytes() / MIB
            for function in sorted(functions.values(), key=lambda built: built.logical_id)
        },
        all_in_one=bundle.size_bytes() / MIB,
        limit=float(LIMIT_MIB),
        goal=float(GOAL_MIB),
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", action="store_true", help="run `make build` when missing")
    args = parser.parse_args(argv)
    if not is_built() and args.build:
        build()
    if not is_built():
        print("not built: run `make build` (or pass --build)")
        return
    sizes = measure()
    for name, mib in sizes.functions.items():
        print(f"{name:<16}{mib:8.1f} MiB  ({mib / sizes.all_in_one:.0%} of the all-in-one bundle)")
    print(f"{'all-in-one':<16}{sizes.all_in_one:8.1f} MiB  (limit {sizes.limit:g} MiB)")


if __name__ == "__main__":
    main()
