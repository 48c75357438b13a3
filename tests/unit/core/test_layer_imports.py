"""The shared layer never imports the agent stack: the CRUD and migration functions' cold start
depends on it (``import agents`` alone costs over a second).

Every module of ``chatkit_backend`` is imported in a fresh interpreter, then ``sys.modules`` is
checked; a fresh process is the only honest way (this test process has the agent stack loaded).
"""

from __future__ import annotations

import ast
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import chatkit_backend

FORBIDDEN = ("agents", "openai", "fastmcp", "mcp", "chatkit.server", "chatkit.agents")
LAYER = Path(chatkit_backend.__file__).resolve().parents[1]


def test_no_layer_module_imports_the_agent_stack() -> None:
    modules = sorted(
        f"chatkit_backend.{info.name}" for info in pkgutil.iter_modules(chatkit_backend.__path__)
    )
    assert "chatkit_backend.store" in modules
    script = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        f"print(json.dumps([m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r} "
        f"or any(m == f or m.startswith(f + '.') for f in {FORBIDDEN!r})]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(LAYER), "PATH": "/usr/bin:/bin"},
    )
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded == [], f"the layer imported {loaded}"


FUNCTION_MODULES = ("chat_app", "conversations_app", "migration_runner", "migration_handler")


def test_no_layer_module_imports_a_function() -> None:
    """The layer is the core every function shares: a dependency on one function's code would
    ship that code to the others and tie their deploys together."""
    offenders = []
    for path in sorted((LAYER / "chatkit_backend").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in FUNCTION_MODULES]
    assert offenders == []
