"""Where the conversations function registers its SnapStart hooks: with the runtime's
``snapshot_restore_py`` when it exists (in Lambda), else with the local registry.

Both cases run in a fresh interpreter; the runtime's module is stood in for by a file that records
what is registered, with the signature the runtime's module has (``register_*(func, *args)``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.paths import REPO_ROOT

ROOT = REPO_ROOT

RUNTIME_MODULE = """
registered = {"before": [], "after": []}

def register_before_snapshot(func, *args, **kwargs):
    registered["before"].append(func.__name__)
    return func

def register_after_restore(func, *args, **kwargs):
    registered["after"].append(func.__name__)
    return func
"""

CHILD = """
import json, sys
from conversations_app import snapstart

def before_snapshot(): pass
def after_restore(): pass

snapstart.register_before_snapshot(before_snapshot)
snapstart.register_after_restore(after_restore)
try:
    import snapshot_restore_py
    runtime = snapshot_restore_py.registered
except ImportError:
    runtime = None
local = {"before": [f.__name__ for f in snapstart.local_hooks.before_snapshot],
         "after": [f.__name__ for f in snapstart.local_hooks.after_restore]}
print(json.dumps({"runtime": runtime, "local": local}))
"""


def registrations(extra_path: Path | None) -> dict[str, object]:
    parts = [str(ROOT / "layers/shared"), str(ROOT / "functions/conversations")]
    if extra_path is not None:
        parts.insert(0, str(extra_path))
    completed = subprocess.run(
        [sys.executable, "-c", CHILD],
        capture_output=True,
        text=True,
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": os.pathsep.join(parts)},
        timeout=60,
        check=True,
    )
    result: dict[str, object] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def test_in_lambda_the_runtime_gets_the_hooks(tmp_path: Path) -> None:
    (tmp_path / "snapshot_restore_py.py").write_text(RUNTIME_MODULE)
    result = registrations(tmp_path)
    assert result["runtime"] == {"before": ["before_snapshot"], "after": ["after_restore"]}
    assert result["local"] == {"before": [], "after": []}


def test_elsewhere_the_local_registry_gets_them() -> None:
    result = registrations(None)
    assert result["runtime"] is None
    assert result["local"] == {"before": ["before_snapshot"], "after": ["after_restore"]}
