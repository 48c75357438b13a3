"""What the chat function loads at init, and what it leaves to the first turn (or the warm-up).

The app's lifespan (the Lambda init phase) builds the service with the agent stack and completes
the ChatKit request models (whose schemas the SDK would otherwise regenerate per request), but not
FastMCP, nor an HTTP client the process has no use for: the todo server and the in-process MCP
client load on the first turn, or in the SnapStart warm-up before the snapshot. A fresh
interpreter is the only honest place to look.
"""

from __future__ import annotations

from tests.support.fresh_process import run_fresh

CHILD = """
import asyncio, json, os, sys
os.environ["AWS_LWA_SNAPSTART_BEFORE_CHECKPOINT_PATH"] = "/_lwa/before-checkpoint"
import httpx
from chat_app.app import create_app
from chatkit_backend.settings import Settings

settings = Settings(
    jwt_secret="x" * 40, database_url="postgresql://nobody@127.0.0.1:9/none",
    openai_api_key=None, openai_api_key_secret_arn=None, openai_base_url=None, mcp_servers=[],
)
app = create_app(settings=settings)
loaded = lambda: sorted(m for m in ("agents", "fastmcp", "fastmcp.client") if m in sys.modules)
# Built only for a model provider or a trace exporter: the offline model with tracing off has
# neither (httpcore2 is the transport under both the openai client and the SDK's exporter).
HTTP_CLIENT_MODULES = ("httpcore2", "openai.resources.chat")
# Nor, on PostgreSQL, SQLAlchemy's SQLite dialect (the embedded database's only).
UNUSED_MODULES = (*HTTP_CLIENT_MODULES, "sqlalchemy.dialects.sqlite")

def incomplete_request_models():
    from pydantic import BaseModel
    import chatkit.types
    return sorted(name for name, value in vars(chatkit.types).items()
                  if isinstance(value, type) and issubclass(value, BaseModel)
                  and value is not BaseModel and not value.__pydantic_complete__
                  and not getattr(value, "__pydantic_generic_metadata__", {}).get("parameters"))

def tool_events_built():
    from chat_app.turn_events import ToolTaskAdded, ToolTaskUpdated
    return [event.__pydantic_complete__ for event in (ToolTaskAdded, ToolTaskUpdated)]

async def main():
    async with app.router.lifespan_context(app):
        after_init = loaded()
        built_at_init = tool_events_built()
        clients = sorted(m for m in UNUSED_MODULES if m in sys.modules)
        incomplete = incomplete_request_models()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            # The warm-up needs no database: it stops at a 401 and lists the todo tools.
            status = (await client.post("/_lwa/before-checkpoint")).status_code
        return after_init, clients, incomplete, status, loaded(), built_at_init, tool_events_built()

print(json.dumps(asyncio.run(main())))
"""


def test_fastmcp_loads_in_the_warm_up_not_at_init() -> None:
    after_init, _, incomplete, status, after_warm_up, *_ = run_fresh(CHILD, "functions/chat")
    assert after_init == ["agents"]
    assert incomplete == []  # the SDK builds a TypeAdapter of them per request
    assert status == 200
    assert after_warm_up == ["agents", "fastmcp", "fastmcp.client"]


def test_init_loads_nothing_it_does_not_use() -> None:
    """Tracing off installs a trace provider with no exporter (the SDK's default one builds an
    HTTPS client at first access), the model client's resources load only for a provider, and
    the SQLite dialect only for an embedded database."""
    process_database = {"DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:9/none"}
    _, unused, *_ = run_fresh(CHILD, "functions/chat", process_database)
    assert unused == []


def test_the_tool_workflow_events_are_built_in_the_warm_up_not_at_init() -> None:
    """A turn without a tool call never needs their schemas; a first turn or the SnapStart
    warm-up builds them."""
    *_, at_init, after_warm_up = run_fresh(CHILD, "functions/chat")
    assert at_init == [False, False]
    assert after_warm_up == [True, True]
