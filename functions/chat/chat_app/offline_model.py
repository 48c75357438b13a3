"""A built-in model that needs no network: what the local server uses on a fresh machine.

It implements the Agents SDK ``Model`` interface and behaves like a (very literal) real model:
it reads only what a model reads (the input items and the tools offered), so it is stateless and
deterministic. What it says or calls is planned by :mod:`chat_app.offline_intents`; this module
streams the plan as word-sized ``response.output_text.delta`` events (or one tool call), without
sleeps, through the same Responses event sequence a real model produces
(:class:`~chat_app.response_stream.ResponseStream`), so everything downstream (the Runner,
ChatKit's ``stream_agent_response``) runs unchanged.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

from agents.agent_output import AgentOutputSchemaBase
from agents.handoffs import Handoff
from agents.items import ModelResponse, TResponseInputItem, TResponseStreamEvent
from agents.model_settings import ModelSettings
from agents.models.interface import Model, ModelTracing
from agents.tool import Tool
from agents.usage import Usage
from openai.types.responses import ResponseCompletedEvent
from openai.types.responses.response_prompt_param import ResponsePromptParam

from .offline_intents import (
    PREFIX,
    Reply,
    ToolCall,
    acknowledge_attachments,
    picked_tool_call,
    plan_reply,
    read_turn,
)
from .response_stream import ResponseStream, token_usage

MODEL_NAME = "offline"


class OfflineModel(Model):
    """The Agents SDK ``Model`` of the built-in offline assistant."""

    async def get_response(self, *args: Any, **kwargs: Any) -> ModelResponse:
        """The streamed response, collected (the same arguments as :meth:`stream_response`)."""
        events = [event async for event in self.stream_response(*args, **kwargs)]
        completed = events[-1]
        assert isinstance(completed, ResponseCompletedEvent)
        tokens = sum(event.type in _DELTAS for event in events)
        usage = Usage(requests=1, output_tokens=tokens, total_tokens=tokens)
        return ModelResponse(
            output=completed.response.output, usage=usage, response_id=completed.response.id
        )

    async def stream_response(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        model_settings: ModelSettings,
        tools: list[Tool],
        output_schema: AgentOutputSchemaBase | None,
        handoffs: list[Handoff],
        tracing: ModelTracing,
        *,
        previous_response_id: str | None,
        conversation_id: str | None,
        prompt: ResponsePromptParam | None,
    ) -> AsyncIterator[TResponseStreamEvent]:
        for event in respond(_plan(input, tools, model_settings), estimated_tokens(input)):
            yield event


def _plan(
    input: str | list[TResponseInputItem], tools: list[Tool], model_settings: ModelSettings
) -> Reply:
    offered = model_settings.tool_choice != "none"
    tool_names = {str(getattr(tool, "name", "")) for tool in tools} if offered else set()
    turn = read_turn(input)
    picked = model_settings.tool_choice
    forced = picked_tool_call(turn, picked, tool_names) if isinstance(picked, str) else None
    if forced is not None:
        return forced
    reply = plan_reply(turn, tool_names)
    if isinstance(reply, str) and (note := acknowledge_attachments(input)):
        return f"{note} {reply.removeprefix(PREFIX).lstrip()}"
    return reply


def respond(reply: Reply, input_tokens: int = 0) -> list[TResponseStreamEvent]:
    """The whole response stream of ``reply``, ending with its usage as a real model reports
    it (so the local server's per-user token budget counts offline turns too)."""
    stream = ResponseStream(model=MODEL_NAME)
    events = stream.start()
    if isinstance(reply, ToolCall):
        arguments = json.dumps(reply.arguments, separators=(",", ":"))
        events += stream.function_call(reply.name, arguments)
    else:
        events += stream.message(tokenize(reply))
    output_tokens = sum(event.type in _DELTAS for event in events)
    events.append(stream.completed(token_usage(input_tokens, output_tokens)))
    return events


CHARS_PER_TOKEN = 4
"""The usual rule of thumb for English text, for :func:`estimated_tokens`."""


def estimated_tokens(input: str | list[TResponseInputItem]) -> int:
    """The input's text in tokens, estimated from its characters (the offline model has no
    tokenizer; a real model reports its own count). Attachment bytes (``data:`` URLs, file data)
    are left out: a model does not read them as text."""
    return _text_chars(input) // CHARS_PER_TOKEN


MEDIA_FIELDS = frozenset({"image_url", "file_data"})


def _text_chars(value: object) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict):
        return sum(_text_chars(v) for k, v in value.items() if k not in MEDIA_FIELDS)
    if isinstance(value, list | tuple):
        return sum(_text_chars(v) for v in value)
    return 0


_DELTAS = ("response.output_text.delta", "response.function_call_arguments.delta")
"""The events that each count as one output token."""


def tokenize(text: str) -> list[str]:
    """Word-sized deltas (each word with the spaces around it); they join back to ``text``."""
    return re.findall(r"\s*\S+\s*", text)
