"""``python -m chat_app`` pauses the garbage collector before anything heavy loads, and the app's
lifespan startup (the end of the Lambda init phase) freezes what init built and resumes it.

A fresh interpreter runs the entry module with a stand-in for ``uvicorn.main`` that does what
uvicorn does with ``--lifespan on`` (import the app, run its startup) and reports what it saw.
"""

from __future__ import annotations

from tests.support.fresh_process import run_fresh

CHILD = """
import gc, json, runpy, sys, types
seen = {}

def serve():  # what uvicorn.main does before it accepts a connection
    import asyncio
    from chatkit_backend import init_phase
    seen["paused_before_the_app"] = not gc.isenabled()
    from chat_app.app import create_app
    from chatkit_backend.settings import Settings
    settings = Settings(
        jwt_secret="x" * 40, database_url="postgresql://nobody@127.0.0.1:9/none",
        openai_api_key=None, openai_base_url=None, mcp_servers=[],
    )
    app = create_app(settings=settings)

    async def startup():
        async with app.router.lifespan_context(app):
            seen["agents_loaded"] = "agents" in sys.modules
            seen["enabled_after_startup"] = gc.isenabled()
            seen["froze_init"] = init_phase._froze_init
            seen["frozen"] = gc.get_freeze_count()

    asyncio.run(startup())

stand_in = types.ModuleType("uvicorn")
stand_in.main = serve
sys.modules["uvicorn"] = stand_in
seen["enabled_at_start"] = gc.isenabled()
runpy.run_module("chat_app", run_name="__main__")
print(json.dumps(seen))
"""


def test_the_entry_point_pauses_the_collector_for_the_init_phase_only() -> None:
    seen = run_fresh(CHILD, "functions/chat")
    assert seen["enabled_at_start"]
    assert seen["paused_before_the_app"]
    assert seen["agents_loaded"]
    assert seen["enabled_after_startup"]
    assert seen["froze_init"]
    assert seen["frozen"] > 100_000  # the agent stack and the app, out of every later collection
