"""The model client sends what plain ``AsyncOpenAI`` sends, byte for byte in meaning.

``ModelClient`` moves the conversation and the tool definitions into ``extra_body`` so the openai
SDK does not walk them per request; what reaches the model must not change. Both APIs, over HTTP
to the fake OpenAI server, the same streamed call made by each client.
"""

from __future__ import annotations

from typing import Any

import pytest
from chat_app.model_client import ModelClient
from openai import AsyncOpenAI

from tests.support.fake_openai import FakeOpenAI, text

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
