"""The model client sends what plain ``AsyncOpenAI`` sends, and reads what it reads.

``ModelClient`` moves the conversation and the tool definitions into ``extra_body`` so the openai
SDK does not walk them per request, and builds streamed chunks and events with pydantic's
validator instead of the SDK's constructor; neither what reaches the model nor what the Agents
SDK gets back may change. Both APIs, over HTTP to the fake OpenAI server, the same streamed call
made by each client.
"""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
from chat_app.model_client import ModelClient
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletionChunk
from openai.types.responses import ResponseStreamEvent

from tests.support.fake_openai import FakeOpenAI, call, text

SCHEMA = {
    "type": "object",
    "properties": {"title": {"type": "string", "description": "What to do"}},
    "required": ["title"],
    "additionalProperties": False,
}
CHAT_TOOL = {
    "type": "function",
    "function": {"name": "add_task", "description": "Add", "parameters": SCHEMA, "strict": True},
}
RESPONSES_TOOL = {
    "type": "function",
    "name": "add_task",
    "description": "Add",
    "parameters": SCHEMA,
    "strict": True,
}
HISTORY = [
    {"role": "user", "content": "add milk"},
    {"role": "assistant", "content": "Which shop?"},
    {"role": "user", "content": "any"},
]


async def chat_call(client: Any, tools: bool) -> None:
    extra: dict[str, Any] = {"tools": [CHAT_TOOL], "tool_choice": "auto"} if tools else {}
    stream = await client.chat.completions.create(
        model="m",
        messages=HISTORY,
        max_tokens=50,
        stream=True,
        extra_body={"safety_identifier": "u"},
        **extra,
    )
    async for _ in stream:
        pass


async def responses_call(client: Any, tools: bool) -> None:
    extra: dict[str, Any] = {"tools": [RESPONSES_TOOL]} if tools else {}
    stream = await client.responses.create(
        model="m",
        input=HISTORY,
        store=False,
        stream=True,
        extra_body={"safety_identifier": "u"},
        **extra,
    )
    async for _ in stream:
        pass


@pytest.mark.parametrize("tools", [True, False], ids=["tools", "no-tools"])
@pytest.mark.parametrize("call", [chat_call, responses_call], ids=["chat", "responses"])
async def test_the_request_body_is_the_plain_clients(
    fake: FakeOpenAI, call: Any, tools: bool
) -> None:
    bodies = []
    for client_type in (AsyncOpenAI, ModelClient):
        fake.script(text("ok"))
        client = client_type(api_key="test-key", base_url=fake.base_url)
        try:
            await call(client, tools)
        finally:
            await client.close()
        bodies.append(fake.requests[-1].body)

    plain, ours = bodies
    assert ours == plain
    assert ("tools" in ours) is tools


async def streamed(client: Any, api: str) -> list[Any]:
    """Every chunk or event of one streamed call, as the client parsed it."""
    if api == "chat":
        stream: Any = await client.chat.completions.create(
            model="m",
            messages=HISTORY,
            stream=True,
            tools=[CHAT_TOOL],
        )
    else:
        stream = await client.responses.create(
            model="m",
            input=HISTORY,
            stream=True,
            tools=[RESPONSES_TOOL],
        )
    return [part async for part in stream]


REPLIES = {
    "text": text("Re: ", "any ", "shop"),
    "tool call": call("add_task", {"title": "milk"}, before=("On it. ",)),
    "reasoning": text("Done.", reasoning=(("Think", "ing"),)),
}


@pytest.mark.parametrize("reply", list(REPLIES), ids=list(REPLIES))
@pytest.mark.parametrize("api", ["chat", "responses"])
async def test_streamed_parts_are_the_plain_clients(fake: FakeOpenAI, api: str, reply: str) -> None:
    """The validator builds the very objects the SDK's constructor builds: same classes, same
    values, same fields set (what ``model_dump(exclude_unset=True)`` and the Agents SDK read)."""
    parsed = []
    for client_type in (AsyncOpenAI, ModelClient):
        fake.script(REPLIES[reply])
        client = client_type(api_key="test-key", base_url=fake.base_url)
        try:
            parsed.append(await streamed(client, api))
        finally:
            await client.close()

    plain, ours = parsed
    assert [type(part) for part in ours] == [type(part) for part in plain]
    for unset in (False, True):
        assert [masked(part.model_dump(exclude_unset=unset)) for part in ours] == [
            masked(part.model_dump(exclude_unset=unset)) for part in plain
        ]


STAMPS = ("id", "item_id", "call_id", "created", "created_at", "completed_at")
"""Fields the fake fills afresh on every call (ids and times)."""


def masked(value: Any) -> Any:
    """``value`` with the fake's fresh ids and times replaced by a marker."""
    if isinstance(value, dict):
        return {k: "<stamp>" if k in STAMPS else masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [masked(item) for item in value]
    return value


@pytest.mark.parametrize(
    ("data", "cast_to"),
    [
        ({"id": "c", "choices": [{"index": "first"}], "created": 0, "model": "m"}, "chunk"),
        ({"type": "response.brand_new_event", "sequence_number": 1}, "event"),
        ({"type": "response.output_text.delta", "delta": 7}, "event"),
    ],
    ids=["invalid chunk", "unknown event", "invalid event"],
)
def test_what_does_not_validate_takes_the_sdks_lenient_path(data: Any, cast_to: str) -> None:
    target: Any = ChatCompletionChunk if cast_to == "chunk" else ResponseStreamEvent
    response = httpx2.Response(200)
    kwargs = {"data": data, "cast_to": target, "response": response}
    plain = AsyncOpenAI(api_key="k")._process_response_data(**kwargs)
    ours = ModelClient(api_key="k")._process_response_data(**kwargs)

    assert type(ours) is type(plain)
    assert ours.model_dump(warnings=False) == plain.model_dump(warnings=False)
