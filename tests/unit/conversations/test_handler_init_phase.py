"""Importing the CRUD function's handler module is its Lambda init phase: the garbage collector
is paused while the libraries load and the app is built, then resumes with that heap frozen.

A fresh interpreter imports the module; an import hook notes the collector's state when the
heaviest libraries load.
"""

from __future__ import annotations

from tests.support.fresh_process import run_fresh
from tests.support.tokens import TEST_JWT_SECRET

CHILD = """
import gc, json, sys
from importlib.abc import MetaPathFinder
seen = {"enabled_at_start": gc.isenabled(), "while_loading": {}}

class Observer(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name in ("sqlalchemy", "fastapi", "psycopg", "jwt"):
            seen["while_loading"][name] = gc.isenabled()
        return None

sys.meta_path.insert(0, Observer())
import conversations_app.handler
from chatkit_backend import init_phase
seen.update(enabled_after=gc.isenabled(), froze_init=init_phase._froze_init,
            frozen=gc.get_freeze_count())
print(json.dumps(seen))
"""


def test_importing_the_handler_runs_its_init_with_the_collector_paused() -> None:
    seen = run_fresh(
        CHILD,
        "functions/conversations",
        {
            "JWT_SECRET": TEST_JWT_SECRET,
            "DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:9/none",
        },
    )
    assert seen["enabled_at_start"]
    assert seen["while_loading"] == {
        "sqlalchemy": False,
        "fastapi": False,
        "psycopg": False,
        "jwt": False,
    }
    assert seen["enabled_after"]
    assert seen["froze_init"]
    assert seen["frozen"] > 50_000


MCP_MODELS = """
import json, sys
import conversations_app.handler
print(json.dumps("chatkit_backend.remote_mcp" in sys.modules))
"""


def test_the_remote_mcp_models_load_only_when_servers_are_configured() -> None:
    """The settings validate ``MCP_SERVERS`` at start, with models only a configured entry
    needs: a function without remote servers (the CRUD one, as deployed) never builds them."""
    env = {
        "JWT_SECRET": TEST_JWT_SECRET,
        "DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:9/none",
    }
    assert run_fresh(MCP_MODELS, "functions/conversations", env) is False
    configured = {**env, "MCP_SERVERS": "https://tools.example.com/mcp"}
    assert run_fresh(MCP_MODELS, "functions/conversations", configured) is True
