"""A program in a fresh interpreter started like a function's sandbox: the shared layer and the
function's folder on the import path, and only the environment it is given.

What a process loads at start (which modules, the collector's state) can only be seen honestly
from a new interpreter: the test process has everything loaded already.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from tests.support.paths import REPO_ROOT


def run_fresh(program: str, function_dir: str, env: dict[str, str] | None = None) -> Any:
    """Run ``program`` with ``layers/shared`` and ``function_dir`` (relative to the checkout) on
    the import path; returns the JSON value of the last line it prints (its stderr on failure)."""
    completed = subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        env={
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": os.pathsep.join(
                str(REPO_ROOT / part) for part in ("layers/shared", function_dir)
            ),
            "LOG_LEVEL": "WARNING",
            **(env or {}),
        },
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout.strip().splitlines()[-1])
