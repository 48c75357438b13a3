"""Generate the Lambda layers' pinned requirements from ``uv.lock`` (or check they are current).

Two layers keep the agent stack out of the CRUD and migration functions:

* ``layers/shared/requirements.txt`` (core layer, every function): the closure of the project's
  dependencies with the agent stack pruned, plus ``openai-chatkit`` itself and ``jinja2``. The
  core package only uses ``chatkit.types`` / ``chatkit.store``, which need nothing else; the
  SDK's declared dependencies (``openai-agents``, ``openai``, ``uvicorn``) go to the agent layer.
* ``layers/agent/requirements.txt`` (agent layer, chat function only): everything else.

Both files pin the complete closure (every transitive package, with uv's environment markers), so
``layers/Makefile`` installs them with ``--no-deps`` and no package lands in both layers.

Usage: ``python3 scripts/export-layer-requirements.py`` writes both files; ``--check`` exits 1
when they differ from what ``uv.lock`` gives (CI and
``tests/unit/project/test_layer_requirements.py``).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORE_FILE = ROOT / "layers" / "shared" / "requirements.txt"
AGENT_FILE = ROOT / "layers" / "agent" / "requirements.txt"

AGENT_ROOTS = ("openai-agents", "openai-chatkit", "fastmcp", "uvicorn")
"""Direct dependencies only the chat function imports."""
LOCAL_ONLY = ("aiosqlite",)
"""Direct dependencies of the local dev server (embedded SQLite), never deployed."""
CORE_NO_DEPS = ("openai-chatkit", "jinja2")
"""Installed in the core layer without the SDK's agent dependencies (``chatkit.types`` needs
``pydantic`` and ``jinja2`` only; the built-artifact checks import it from the core layer)."""

HEADER = (
    "# GENERATED from uv.lock by scripts/export-layer-requirements.py - do not edit.\n"
    "# Installed with --no-deps by layers/Makefile ({layer} layer).\n"
)
_NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)")


def _uv() -> list[str]:
    """uv itself: ``UV`` (set by ``uv run``), else ``uv`` on PATH, else the pip-installed module."""
    found = os.environ.get("UV") or shutil.which("uv")
    return [found] if found else ["python3", "-m", "uv"]


def _export(*prune: str) -> dict[str, str]:
    """``uv export`` of the runtime dependencies as {normalised name: requirement line}."""
    args = [
        *_uv(),
        "export",
        "--frozen",
        "--no-dev",
        "--no-emit-project",
        "--no-hashes",
        "--no-annotate",
        "--no-header",
    ]
    for name in prune:
        args += ["--prune", name]
    output = subprocess.run(  # noqa: S603 - fixed argv, no shell
        args, cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    lines: dict[str, str] = {}
    for line in output.splitlines():
        match = _NAME.match(line.strip())
        if match:
            lines[_normalise(match.group(1))] = line.strip()
    return lines


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def render() -> dict[Path, str]:
    """The expected content of both requirement files."""
    everything = _export()
    core_names = set(_export(*AGENT_ROOTS, *LOCAL_ONLY)) | set(CORE_NO_DEPS)
    local_names = set(everything) - set(_export(*LOCAL_ONLY))
    agent_names = set(everything) - core_names - local_names

    def body(layer: str, names: set[str]) -> str:
        return HEADER.format(layer=layer) + "".join(
            f"{everything[name]}\n" for name in sorted(names)
        )

    return {CORE_FILE: body("core", core_names), AGENT_FILE: body("agent", agent_names)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the files are stale")
    args = parser.parse_args(argv)
    stale = []
    for path, content in render().items():
        current = path.read_text() if path.exists() else None
        if current == content:
            continue
        if args.check:
            stale.append(path.relative_to(ROOT))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
            print(f"wrote {path.relative_to(ROOT)}")
    if stale:
        print(
            "stale (run python3 scripts/export-layer-requirements.py): "
            + ", ".join(map(str, stale)),
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
