"""The database work of a turn does not grow with the answer: deltas are never written."""

from __future__ import annotations

from typing import Any

import httpx
from agents.testing import ScriptedModel
from chatkit_backend.caller import Caller
from sqlalchemy import event

from tests.e2e.chat.chat_support import ChatServerThread, stream, streamed_reply, user_input


async def test_sql_statements_per_turn_do_not_depend_on_the_answer_length(
    client: httpx.AsyncClient,
    chat_server: ChatServerThread,
    model: ScriptedModel,
    alice: Caller,
) -> None:
    created = await stream(
        client, alice, {"type": "threads.create", "params": {"input": user_input("Hi")}}
    )
    thread_id = created.thread_id
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    async def turn(deltas: int) -> int:
        model.enqueue(streamed_reply([f"w{index} " for index in range(deltas)]))
        statements.clear()
        result = await stream(
            client,
            alice,
            {
                "type": "threads.add_user_message",
                "params": {"thread_id": thread_id, "input": user_input("Again")},
            },
        )
        assert result.status_code == 200
        assert len(result.datas) > deltas
        return len(statements)

    engine = chat_server.database.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        short, long = await turn(10), await turn(500)
    finally:
        event.remove(engine, "before_cursor_execute", count)

    assert short == long, (short, long)
    assert short <= 12
