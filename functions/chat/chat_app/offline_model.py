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

from agents.agent_output import AgentOutputSchemaBase
from agents.handoffs import Handoff
from agents.items import ModelResponse, TResponseInputItem, TResponseStreamEvent
from agents.model_settings import ModelSettings
from agents.models.interface import Model, ModelTracing
from agents.tool import Tool
from agents.usage import Usage
from openai.types.responses import ResponseCompletedEvent
from openai.types.responses.response_prompt_param import ResponsePromptParam

from .offline_intents import Reply, ToolCall, plan_reply, read_turn
from .response_stream import ResponseStream

MODEL_NAME = "offline"


class OfflineModel(Model):
    """The Agents SDK ``Model`` of the built-in offline assistant."""

    async def get_response(
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
    ) -> ModelResponse:
        events, tokens = respond(_plan(input, tools, model_settings))
        completed = events[-1]
        assert isinstance(completed, ResponseCompletedEvent)
        response = completed.response
        usage = Usage(requests=1, output_tokens=tokens, total_tokens=tokens)
        return ModelResponse(output=response.output, usage=usage, response_id=response.id)

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
        events, _tokens = respond(_plan(input, tools, model_settings))
        for event in events:
            yield event


def _plan(
    input: str | list[TResponseInputItem], tools: list[Tool], model_settings: ModelSettings
) -> Reply:
    offered = model_settings.tool_choice != "none"
    tool_names = {str(getattr(tool, "name", "")) for tool in tools} if offered else set()
    return plan_reply(read_turn(input), tool_names)


def respond(reply: Reply) -> tuple[list[TResponseStreamEvent], int]:
    """The whole response stream of ``reply`` and its output token count (one per delta)."""
    stream = ResponseStream(model=MODEL_NAME)
    events = stream.start()
    if isinstance(reply, ToolCall):
        arguments = json.dumps(reply.arguments, separators=(",", ":"))
        deltas = [arguments]
        events += stream.function_call(reply.name, arguments)
    else:
        deltas = tokenize(reply)
        events += stream.message(deltas)
    events.append(stream.completed())
    return events, len(deltas)


def tokenize(text: str) -> list[str]:
    """Word-sized deltas (each word with the spaces around it); they join back to ``text``."""
    return re.findall(r"\s*\S+\s*", text)
