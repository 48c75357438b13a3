"""Multi-turn conversations over the real model path: the ``openai`` client inside the Agents SDK
models, over real HTTP, against the fake OpenAI server, for both model APIs and all protocols.

What the model was sent is asserted, not only what the client got: history conversion bugs (a
stored answer the Chat Completions converter rejects, tool calls not replayed) only show there.
"""

from __future__ import annotations

import httpx
import pytest
from chatkit_backend.caller import Caller

from tests.e2e.chat.protocol_clients import PROTOCOLS, Protocol, send
from tests.support.fake_openai import Api, FakeOpenAI, call, error, text


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_five_turns_with_tools_and_a_failed_answer(
    api: Api, api_client: httpx.AsyncClient, fake: FakeOpenAI, protocol: Protocol, alice: Caller
) -> None:
    fake.script(
        text("Hello", " there"),
        call("add_task", {"title": "buy milk"}, before=("Adding it.",)),
        text("Added ", "buy milk."),
        text("Part", "ial ", "words", cut_after=3),
        call("list_tasks", {}),
        text("You have ", "one task."),
        *[error(429, retry_after="0.05")] * 3,  # the client's first try and its 2 retries
        text("Fine", " again."),
    )
    first = await send(api_client, alice, protocol, "hi")
    assert (first.answer, first.errors) == ("Hello there", [])
    thread = first.thread_id
    assert thread is not None

    second = await send(api_client, alice, protocol, "add buy milk", thread)
    assert second.errors == [], second.datas
    assert "Adding it." in second.answer
    assert second.answer.endswith("Added buy milk.")

    third = await send(api_client, alice, protocol, "say something", thread)
    assert third.errors, third.datas
    assert "Partial words" in third.answer

    fourth = await send(api_client, alice, protocol, "what are my tasks?", thread)
    assert (fourth.answer, fourth.errors) == ("You have one task.", [])

    fifth = await send(api_client, alice, protocol, "and now?", thread)
    assert fifth.errors, fifth.datas

    sixth = await send(api_client, alice, protocol, "still there?", thread)
    assert (sixth.answer, sixth.errors) == ("Fine again.", [])

    seen = fake.requests[-1].transcript()
    assert seen[0] == ("user", "hi")
    assert ("assistant", "Hello there") in seen
    calls = [said for role, said in seen if role == "call"]
    assert calls[0].startswith("add_task")
    assert "buy milk" in calls[0]
    assert calls[1].startswith("list_tasks")
    results = [said for role, said in seen if role == "result"]
    assert "buy milk" in results[0]
    assert ("assistant", "Partial words") in seen
    assert seen[-1] == ("user", "still there?")
    users = [said for role, said in seen if role == "user"]
    widgets = [said for said in users if said.startswith("[A widget ")]  # the tools' widgets
    assert ["Task added:" in widgets[0], "Task list (1 open)" in widgets[1]] == [True, True]
    users = [said for said in users if said not in widgets]
    assert (
        users[:6]
        == [
            "hi",
            "add buy milk",
            "say something",
            "what are my tasks?",
            "and now?",
            "still there?",
        ][: len(users[:6])]
    )
    assert fake.pending == 0


async def test_a_stored_answer_goes_back_to_the_model_as_plain_text(
    api: Api, api_client: httpx.AsyncClient, fake: FakeOpenAI, alice: Caller
) -> None:
    """The second turn used to fail over Chat Completions before any request was sent."""
    first = await send(api_client, alice, "chatkit", "hello")
    second = await send(api_client, alice, "chatkit", "again", first.thread_id)
    assert (second.answer, second.errors) == ("Re: again", [])
    assert fake.requests[-1].transcript() == [
        ("user", "hello"),
        ("assistant", "Re: hello"),
        ("user", "again"),
    ]


async def test_every_model_call_of_a_turn_gets_the_whole_history(
    api: Api, api_client: httpx.AsyncClient, fake: FakeOpenAI, alice: Caller
) -> None:
    """The run holds the turn's own message only; the history goes before every request."""
    first = await send(api_client, alice, "chatkit", "hello")
    fake.script(call("list_tasks", {}), text("Nothing ", "to do."))
    second = await send(api_client, alice, "chatkit", "my tasks?", first.thread_id)
    assert (second.answer, second.errors) == ("Nothing to do.", [])

    calling, answering = (request.transcript() for request in fake.requests[-2:])
    assert calling == [("user", "hello"), ("assistant", "Re: hello"), ("user", "my tasks?")]
    assert answering[:3] == calling
    assert [role for role, _ in answering[3:]] == ["call", "result"]
    assert answering[3][1].startswith("list_tasks")
