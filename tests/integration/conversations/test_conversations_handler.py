"""The route contract through the Lambda handler itself, invoked with the sample events.

The handler module is imported and invoked in one dedicated thread with an event loop of its
own, as a Lambda sandbox runs it: module-scope engine created at import, Mangum's loop reused by
every invocation. The test's own event loop only awaits the replies.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pytest
from chatkit_backend import db as db_module
from chatkit_backend.db import set_database
from chatkit_backend.settings import get_settings

from tests.integration.conversations.routes_contract import Api, Reply, RouteContract
from tests.support.tokens import TEST_JWT_SECRET


@dataclass(frozen=True)
class FakeLambdaContext:
    """The attributes of the Lambda context object the Powertools logger reads."""

    function_name: str = "conversations"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:conversations"
    aws_request_id: str = "00000000-0000-4000-8000-000000000000"


class LambdaSandbox:
    """``conversations_app.handler`` imported and invoked on one thread, like a Lambda sandbox."""

    def __init__(self, environment: dict[str, str]) -> None:
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lambda-sandbox")
        self.module: ModuleType = self._thread.submit(self._init, environment).result()

    @staticmethod
    def _init(environment: dict[str, str]) -> ModuleType:
        asyncio.set_event_loop(asyncio.new_event_loop())
        saved = {name: os.environ.get(name) for name in environment}
        previous_database = db_module._database  # restored below, whatever it was
        os.environ.update(environment)
        get_settings.cache_clear()
        set_database(None)
        sys.modules.pop("conversations_app.handler", None)
        try:
            return importlib.import_module("conversations_app.handler")
        finally:  # the rest of the test session keeps its own settings and database
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            get_settings.cache_clear()
            set_database(previous_database)

    async def current_loop(self) -> asyncio.AbstractEventLoop:
        """The event loop the sandbox thread runs invocations on (Mangum's)."""
        return await asyncio.wrap_future(self._thread.submit(asyncio.get_event_loop))

    async def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        future = self._thread.submit(self.module.handler, event, FakeLambdaContext())
        return await asyncio.wrap_future(future)

    def close(self) -> None:
        def shutdown() -> None:
            loop = asyncio.get_event_loop()
            loop.run_until_complete(self.module.database.dispose())
            loop.close()

        self._thread.submit(shutdown).result()
        self._thread.shutdown()
        sys.modules.pop("conversations_app.handler", None)


class HandlerTransport:
    def __init__(self, sandbox: LambdaSandbox) -> None:
        self.sandbox = sandbox

    async def send(self, event: dict[str, Any]) -> Reply:
        response = await self.sandbox.invoke(event)
        assert response["isBase64Encoded"] is False
        body = response.get("body") or ""
        headers = response.get("headers", {})
        is_json = headers.get("content-type", "").startswith("application/json")
        return Reply(response["statusCode"], json.loads(body) if is_json else body, headers)


@pytest.fixture(scope="module")
def sandbox(pg_url: str) -> Iterator[LambdaSandbox]:
    sandbox = LambdaSandbox({"DATABASE_URL": pg_url, "JWT_SECRET": TEST_JWT_SECRET})
    yield sandbox
    sandbox.close()


class TestThroughTheLambdaHandler(RouteContract):
    @pytest.fixture
    def api(self, sandbox: LambdaSandbox) -> Api:
        return Api(HandlerTransport(sandbox))

    async def test_invocations_reuse_one_loop_and_one_engine(
        self, sandbox: LambdaSandbox, api: Api, alice: str
    ) -> None:
        """Warm invocations: the same event loop and the same pooled engine every time."""
        module = sandbox.module
        engine = module.database.engine
        loop = await sandbox.current_loop()
        for _ in range(3):
            reply = await api.call("list", alice, query="")
            assert reply.status == 200
            assert await sandbox.current_loop() is loop
        assert not loop.is_closed()
        assert module.database.engine is engine
        assert engine.pool.checkedin() >= 1  # the connection went back to the pool for reuse
