"""The offline model as an Agents SDK ``Model``: its deltas and its Responses event stream."""

from __future__ import annotations

import json
from typing import Any

from agents import FunctionTool, ModelSettings
from agents.models.interface import ModelTracing
from chat_app.offline_intents import PREFIX
from chat_app.offline_model import OfflineModel, tokenize
from chat_app.todo_mcp import TOOL_NAMES
from openai.types.responses import ResponseFunctionToolCall, ResponseOutputMessage

ALL_TOOLS = set(TOOL_NAMES)


def test_tokenize_is_word_sized_and_lossless() -> None:
    text = f'{PREFIX} Added task #7 "buy  milk" to your list.'
    tokens = tokenize(text)
    assert "".join(tokens) == text
    assert tokens[:3] == ["(Offline ", "model) ", "Added "]
    assert all(len(token.split()) == 1 for token in tokens)


def todo_tools(names: set[str]) -> list[Any]:
    async def never(_context: Any, _arguments: str) -> str:
        raise AssertionError("the model does not run tools")

    return [FunctionTool(name, "", {"type": "object"}, never) for name in sorted(names)]


async def stream(message: Any, tools: set[str], settings: ModelSettings | None = None) -> list[Any]:
    return [
        event
        async for event in OfflineModel().stream_response(
            None,
            message,
            settings or ModelSettings(),
            todo_tools(tools),
            None,
            [],
            ModelTracing.DISABLED,
            previous_response_id=None,
            conversation_id=None,
            prompt=None,
        )
    ]


async def test_text_streams_one_word_per_delta_deterministically() -> None:
    first, second = await stream("hello", ALL_TOOLS), await stream("hello", ALL_TOOLS)
    types = [event.type for event in first]
    assert types[:5] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
    ]
    assert types[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [event.sequence_number for event in first] == list(range(len(first)))
    deltas = [event.delta for event in first if event.type == "response.output_text.delta"]
    [done] = [event for event in first if event.type == "response.output_text.done"]
    assert "".join(deltas) == done.text
    assert deltas == tokenize(done.text)
    assert deltas == [e.delta for e in second if e.type == "response.output_text.delta"]
    message = first[-1].response.output[0]
    assert isinstance(message, ResponseOutputMessage)
    assert message.content[0].text == done.text  # type: ignore[union-attr]
    assert {event.item_id for event in first if hasattr(event, "item_id")} == {message.id}


async def test_a_tool_call_streams_as_a_function_call() -> None:
    events = await stream("add a task to buy milk", ALL_TOOLS)
    assert [event.type for event in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    [call] = events[-1].response.output
    assert isinstance(call, ResponseFunctionToolCall)
    assert (call.name, json.loads(call.arguments)) == ("add_task", {"title": "buy milk"})
    assert call.call_id


async def test_tool_choice_none_means_no_tool_call() -> None:
    events = await stream("add a task to buy milk", ALL_TOOLS, ModelSettings(tool_choice="none"))
    assert isinstance(events[-1].response.output[0], ResponseOutputMessage)


async def test_get_response_matches_the_stream() -> None:
    response = await OfflineModel().get_response(
        None,
        "list my tasks",
        ModelSettings(),
        todo_tools(ALL_TOOLS),
        None,
        [],
        ModelTracing.DISABLED,
        previous_response_id=None,
        conversation_id=None,
        prompt=None,
    )
    [call] = response.output
    assert isinstance(call, ResponseFunctionToolCall)
    assert call.name == "list_tasks"
    assert (response.usage.requests, response.usage.output_tokens) == (1, 1)  # one delta
