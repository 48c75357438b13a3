"""Responses-API event streams, built from the ``openai`` package's typed events.

One builder for every place that synthesises what a model streams: the offline model, the
scripted models of the end-to-end tests and the fake OpenAI-compatible server (which sends each
event's :func:`event_json`). A :class:`ResponseStream` numbers its events, gives each output item
its index, and ends with ``response.completed`` carrying the items it closed. Each method returns
the events of one step, so a caller can do its own work (wait, fail) between steps.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from chatkit_backend.ids import new_id
from openai.types.responses import (
    Response,
    ResponseCompletedEvent,
    ResponseContentPartAddedEvent,
    ResponseContentPartDoneEvent,
    ResponseCreatedEvent,
    ResponseFunctionCallArgumentsDeltaEvent,
    ResponseFunctionCallArgumentsDoneEvent,
    ResponseFunctionToolCall,
    ResponseInProgressEvent,
    ResponseOutputItem,
    ResponseOutputItemAddedEvent,
    ResponseOutputItemDoneEvent,
    ResponseOutputMessage,
    ResponseOutputText,
    ResponseReasoningItem,
    ResponseReasoningSummaryPartAddedEvent,
    ResponseReasoningSummaryPartDoneEvent,
    ResponseReasoningSummaryTextDeltaEvent,
    ResponseReasoningSummaryTextDoneEvent,
    ResponseStreamEvent,
    ResponseTextDeltaEvent,
    ResponseTextDoneEvent,
    ResponseUsage,
)
from openai.types.responses.response_usage import InputTokensDetails, OutputTokensDetails


class ResponseStream:
    """The events of one model response: ``start``, output items, then ``completed``.

    A message is ``open_message``, ``text_delta`` per delta, ``close_message`` (or all three in
    ``message``); a tool call is ``function_call``. Closed items are kept in ``output``.
    """

    def __init__(
        self, *, model: str, response_id: str | None = None, parallel_tool_calls: bool = False
    ) -> None:
        self.response = Response(
            id=response_id or new_id("resp"),
            created_at=time.time(),
            model=model,
            object="response",
            output=[],
            tool_choice="auto",
            tools=[],
            parallel_tool_calls=parallel_tool_calls,
            status="in_progress",
        )
        self.output: list[ResponseOutputItem] = []
        self._sequence = itertools.count()
        self._message: ResponseOutputMessage | None = None
        self._text: list[str] = []

    def start(self) -> list[ResponseStreamEvent]:
        """``response.created`` and ``response.in_progress``."""
        return [
            ResponseCreatedEvent(
                type="response.created", response=self.response, sequence_number=self._next()
            ),
            ResponseInProgressEvent(
                type="response.in_progress", response=self.response, sequence_number=self._next()
            ),
        ]

    def message(
        self, deltas: Iterable[str], item_id: str | None = None
    ) -> Iterator[ResponseStreamEvent]:
        """A whole assistant message, one ``output_text.delta`` per delta (read lazily)."""
        yield from self.open_message(item_id)
        for delta in deltas:
            yield self.text_delta(delta)
        yield from self.close_message()

    def open_message(self, item_id: str | None = None) -> list[ResponseStreamEvent]:
        """The assistant message item and its (empty) text part are added."""
        assert self._message is None, "a message is already open"
        self._message = ResponseOutputMessage(
            id=item_id or new_id("message"),
            type="message",
            role="assistant",
            status="in_progress",
            content=[],
        )
        self._text = []
        return [
            ResponseOutputItemAddedEvent(
                type="response.output_item.added",
                item=self._message,
                output_index=len(self.output),
                sequence_number=self._next(),
            ),
            ResponseContentPartAddedEvent(
                type="response.content_part.added",
                part=_text_part(""),
                sequence_number=self._next(),
                **self._text_position(),
            ),
        ]

    def text_delta(self, delta: str) -> ResponseTextDeltaEvent:
        """One piece of the open message's text."""
        self._text.append(delta)
        return ResponseTextDeltaEvent(
            type="response.output_text.delta",
            delta=delta,
            logprobs=[],
            sequence_number=self._next(),
            **self._text_position(),
        )

    def close_message(self) -> list[ResponseStreamEvent]:
        """The open message's text, part and item are done (the text is the deltas joined)."""
        where = self._text_position()
        assert self._message is not None
        part = _text_part("".join(self._text))
        message = self._message.model_copy(update={"content": [part], "status": "completed"})
        events: list[ResponseStreamEvent] = [
            ResponseTextDoneEvent(
                type="response.output_text.done",
                text=part.text,
                logprobs=[],
                sequence_number=self._next(),
                **where,
            ),
            ResponseContentPartDoneEvent(
                type="response.content_part.done",
                part=part,
                sequence_number=self._next(),
                **where,
            ),
            self._item_done(message),
        ]
        self._message = None
        return events

    def function_call(
        self,
        name: str,
        arguments: str,
        *,
        call_id: str | None = None,
        item_id: str | None = None,
        argument_deltas: Sequence[str] | None = None,
    ) -> list[ResponseStreamEvent]:
        """A tool call; ``arguments`` (JSON) stream as ``argument_deltas`` (default: one)."""
        call_id = call_id or new_id("call")
        call = ResponseFunctionToolCall(
            id=item_id or call_id,
            call_id=call_id,
            type="function_call",
            name=name,
            arguments=arguments,
            status="completed",
        )
        where: dict[str, Any] = {"item_id": call.id, "output_index": len(self.output)}
        added = call.model_copy(update={"arguments": "", "status": "in_progress"})
        return [
            ResponseOutputItemAddedEvent(
                type="response.output_item.added",
                item=added,
                output_index=where["output_index"],
                sequence_number=self._next(),
            ),
            *(
                ResponseFunctionCallArgumentsDeltaEvent(
                    type="response.function_call_arguments.delta",
                    delta=delta,
                    sequence_number=self._next(),
                    **where,
                )
                for delta in (argument_deltas if argument_deltas is not None else [arguments])
            ),
            # ``name`` is sent by the API but not (yet) a field of the typed event.
            ResponseFunctionCallArgumentsDoneEvent.model_validate(
                {
                    "type": "response.function_call_arguments.done",
                    "arguments": arguments,
                    "name": name,
                    "sequence_number": self._next(),
                    **where,
                }
            ),
            self._item_done(call),
        ]

    def reasoning(self, summaries: Sequence[Sequence[str]]) -> list[ResponseStreamEvent]:
        """A reasoning item whose summary parts (one per entry) stream delta by delta, as a
        reasoning model sends them when a reasoning summary is requested."""
        item = ResponseReasoningItem(id=new_id("rs"), type="reasoning", summary=[])
        where: dict[str, Any] = {"item_id": item.id, "output_index": len(self.output)}
        events: list[ResponseStreamEvent] = [
            ResponseOutputItemAddedEvent(
                type="response.output_item.added",
                item=item,
                output_index=where["output_index"],
                sequence_number=self._next(),
            )
        ]
        for index, deltas in enumerate(summaries):
            text = "".join(deltas)

            def event(kind: type[ResponseStreamEvent], name: str, **fields: Any) -> Any:
                return kind.model_validate(
                    {
                        "type": f"response.reasoning_summary_{name}",
                        "summary_index": index,  # noqa: B023 (called at once, in this loop)
                        "sequence_number": self._next(),
                        **where,
                        **fields,
                    }
                )

            events.append(
                event(
                    ResponseReasoningSummaryPartAddedEvent,
                    "part.added",
                    part={"type": "summary_text", "text": ""},
                )
            )
            events.extend(
                event(ResponseReasoningSummaryTextDeltaEvent, "text.delta", delta=delta)
                for delta in deltas
            )
            events.append(event(ResponseReasoningSummaryTextDoneEvent, "text.done", text=text))
            events.append(
                event(
                    ResponseReasoningSummaryPartDoneEvent,
                    "part.done",
                    part={"type": "summary_text", "text": text},
                )
            )
        summary = [{"type": "summary_text", "text": "".join(deltas)} for deltas in summaries]
        events.append(
            self._item_done(item.model_validate({**item.model_dump(), "summary": summary}))
        )
        return events

    def completed(self, usage: ResponseUsage | None = None) -> ResponseCompletedEvent:
        """``response.completed`` with every closed item (and the token usage, if given)."""
        update: dict[str, Any] = {"output": list(self.output), "status": "completed"}
        if usage is not None:
            update["usage"] = usage
        return ResponseCompletedEvent(
            type="response.completed",
            response=self.response.model_copy(update=update),
            sequence_number=self._next(),
        )

    def _next(self) -> int:
        return next(self._sequence)

    def _text_position(self) -> dict[str, Any]:
        assert self._message is not None, "no message is open"
        return {"item_id": self._message.id, "output_index": len(self.output), "content_index": 0}

    def _item_done(self, item: ResponseOutputItem) -> ResponseOutputItemDoneEvent:
        event = ResponseOutputItemDoneEvent(
            type="response.output_item.done",
            item=item,
            output_index=len(self.output),
            sequence_number=self._next(),
        )
        self.output.append(item)
        return event


def token_usage(input_tokens: int, output_tokens: int) -> ResponseUsage:
    """A response's token usage (no cached or reasoning tokens)."""
    return ResponseUsage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        total_tokens=input_tokens + output_tokens,
        input_tokens_details=InputTokensDetails(cached_tokens=0, cache_write_tokens=0),
        output_tokens_details=OutputTokensDetails(reasoning_tokens=0),
    )


def event_json(event: ResponseStreamEvent) -> dict[str, Any]:
    """The event as the API sends it in an SSE ``data:`` line (unset optional fields left out)."""
    return event.model_dump(mode="json", exclude_none=True)


def _text_part(text: str) -> ResponseOutputText:
    return ResponseOutputText(type="output_text", text=text, annotations=[], logprobs=[])
