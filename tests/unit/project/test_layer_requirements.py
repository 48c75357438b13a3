"""The layers' generated requirement files match uv.lock and split the closure cleanly."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.support.paths import REPO_ROOT

ROOT = REPO_ROOT
SCRIPT = ROOT / "scripts" / "export-layer-requirements.py"
AGENT_ONLY = {"openai", "openai-agents", "fastmcp", "fastmcp-slim", "mcp", "uvicorn", "httpx2"}


def pinned(path: Path) -> dict[str, str]:
    """{name: version} of a generated requirements file."""
    found = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9._-]+)==([^\s;]+)", line)
        if match:
            found[match.group(1).lower()] = match.group(2)
    return found


def test_requirement_files_are_current_with_uv_lock() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_core_layer_carries_no_agent_stack_and_no_package_is_in_both() -> None:
    core = pinned(ROOT / "layers" / "shared" / "requirements.txt")
    agent = pinned(ROOT / "layers" / "agent" / "requirements.txt")
    assert not set(core) & set(agent)
    assert not AGENT_ONLY & set(core)
    assert set(agent) >= AGENT_ONLY
    # chatkit.types / chatkit.store (imported by the core package) need pydantic and jinja2 only
    assert {"openai-chatkit", "jinja2", "pydantic", "sqlmodel", "psycopg"} <= set(core)
    assert "aiosqlite" not in core | agent, "the embedded database is for local runs only"
