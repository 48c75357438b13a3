"""The Responses-stream builder: event order, numbering, indexes, the final response, JSON."""

from __future__ import annotations

from typing import Any

from chat_app.response_stream import ResponseStream, event_json, token_usage
from openai.types.responses import (
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseStreamEvent,
)
from pydantic import TypeAdapter

EVENTS: TypeAdapter[ResponseStreamEvent] = TypeAdapter(ResponseStreamEvent)


def message_then_call() -> tuple[ResponseStream, list[Any]]:
    stream = ResponseStream(model="m", response_id="resp_1")
    events = [*stream.start(), *stream.message(["Hel", "lo"], item_id="msg_1")]
    events += stream.function_call(
        "add_task", '{"title":"x"}', call_id="call_1", argument_deltas=['{"ti', 'tle":"x"}']
    )
    events.append(stream.completed(token_usage(3, 4)))
    return stream, events


def test_a_message_then_a_call_in_the_order_the_api_sends_them() -> None:
    _stream, events = message_then_call()
    assert [event.type for event in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [event.sequence_number for event in events] == list(range(len(events)))
    indexes = [
        (event.type, event.output_index) for event in events if hasattr(event, "output_index")
    ]
    assert {index for kind, index in indexes if "text" in kind or "part" in kind} == {0}
    assert {index for kind, index in indexes if "function_call" in kind} == {1}


def test_the_items_open_empty_and_the_final_response_carries_them_done() -> None:
    stream, events = message_then_call()
    added = [event.item for event in events if event.type == "response.output_item.added"]
    assert [(item.status, getattr(item, "content", None)) for item in added[:1]] == [
        ("in_progress", [])
    ]
    assert isinstance(added[1], ResponseFunctionToolCall)
    assert (added[1].arguments, added[1].status) == ("", "in_progress")
    completed = events[-1].response
    assert (completed.id, completed.status, completed.model) == ("resp_1", "completed", "m")
    message, call = completed.output
    assert isinstance(message, ResponseOutputMessage)
    assert (message.id, message.status, message.content[0].text) == ("msg_1", "completed", "Hello")  # type: ignore[union-attr]
    assert isinstance(call, ResponseFunctionToolCall)
    assert (call.call_id, call.id, call.name, call.arguments) == (
        "call_1",
        "call_1",
        "add_task",
        '{"title":"x"}',
    )
    assert stream.output == [message, call]
    assert completed.usage is not None
    assert (completed.usage.input_tokens, completed.usage.total_tokens) == (3, 7)
    assert events[0].response.status == "in_progress"  # the created event is not mutated


def test_the_text_done_is_the_deltas_joined() -> None:
    _stream, events = message_then_call()
    [done] = [event for event in events if event.type == "response.output_text.done"]
    deltas = [event.delta for event in events if event.type == "response.output_text.delta"]
    assert done.text == "".join(deltas) == "Hello"
    arguments = [
        event.delta for event in events if event.type == "response.function_call_arguments.delta"
    ]
    assert "".join(arguments) == '{"title":"x"}'


def test_ids_default_to_fresh_ones_and_a_call_to_one_arguments_delta() -> None:
    first, second = ResponseStream(model="m"), ResponseStream(model="m")
    assert first.response.id != second.response.id
    events = [*first.start(), *first.message(["a"]), *first.function_call("f", "{}")]
    ids = {event.item_id for event in events if hasattr(event, "item_id")}
    assert len(ids) == 2
    assert sum(event.type == "response.function_call_arguments.delta" for event in events) == 1


def test_each_event_as_json_parses_back_as_the_same_typed_event() -> None:
    _stream, events = message_then_call()
    for event in events:
        data = event_json(event)
        assert EVENTS.validate_python(data) == event
        assert None not in data.values()
    [done] = [e for e in events if e.type == "response.function_call_arguments.done"]
    assert event_json(done)["name"] == "add_task"  # the API sends it; the typed event has no field
