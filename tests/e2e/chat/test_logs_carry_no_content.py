"""A database error during a turn leaves no message text in the logs.

The chat server runs under uvicorn over a scratch PostgreSQL database whose ``thread_items``
refuse assistant messages (a trigger raises): the user's message is stored, the model answers,
and storing the answer fails inside the turn. Everything the process writes (stdout, stderr and
every log record) is captured: the failure is logged, but neither the user's words nor the
model's appear, because the engine hides bound parameters from error texts.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
import migration_runner
import pytest
from agents.testing import ScriptedModel, assistant_message
from chatkit_backend.caller import Caller
from chatkit_backend.db import to_sync_url
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from tests.e2e.chat.chat_support import ChatServerThread, factory_with, server_settings
from tests.e2e.chat.protocol_clients import send
from tests.support.databases import scratch_database

pytestmark = pytest.mark.postgres_only

USER_WORDS = "my-secret-diagnosis-words"
MODEL_WORDS = "the-models-private-answer"

REFUSE_ASSISTANT_ITEMS = """
CREATE FUNCTION refuse_assistant() RETURNS trigger AS $$
BEGIN
  IF NEW.type = 'assistant_message' THEN
    RAISE EXCEPTION 'forced failure for the log test';
  END IF;
  RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER refuse_assistant BEFORE INSERT OR UPDATE ON thread_items
  FOR EACH ROW EXECUTE FUNCTION refuse_assistant();
"""


@pytest.fixture
def failing_url() -> Iterator[str]:
    with scratch_database("ckb_logs") as url:
        migration_runner.upgrade(url)
        engine = create_engine(to_sync_url(url), poolclass=NullPool)
        with engine.begin() as connection:
            connection.execute(text(REFUSE_ASSISTANT_ITEMS))
        engine.dispose()
        yield url


async def test_a_database_error_in_a_turn_logs_no_message_text(
    failing_url: str, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    model = ScriptedModel([[assistant_message(MODEL_WORDS)]])
    user = Caller(user_id="u-logs")
    with ChatServerThread(server_settings(failing_url), factory_with(model)) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            turn = await send(client, user, "chatkit", USER_WORDS)
    assert model.calls, "the model was never called: the failure came before the turn"
    output = capfd.readouterr()
    logged = "\n".join([output.out, output.err, caplog.text])
    assert "forced failure for the log test" in logged  # the error itself is logged
    assert USER_WORDS not in logged
    assert MODEL_WORDS not in logged
    assert "parameters hidden" in logged
    assert turn.status == 200
