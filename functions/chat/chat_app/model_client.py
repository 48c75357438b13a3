"""The model's HTTP client: ``AsyncOpenAI`` sending the turn's conversation as it was built.

Before each request the openai SDK walks every parameter against its ``TypedDict`` annotations
(to rename aliased keys and format annotated values). For the conversation, a turn's whole
history, that walk was the largest cost before the model was called, and it grew with the
thread while changing nothing: message and input items have no aliased or formatted fields; nor
have the tool definitions (their JSON schemas walked key by key on every call). Here the
conversation (``messages`` of Chat Completions, ``input`` of the Responses API) and ``tools``
go in ``extra_body``, which the SDK sends as given; every other parameter is still transformed.

The other way, each streamed chunk or event becomes its model through the SDK's generic
``construct_type``, a Python walk of the type's annotations that cost more than everything else
done per delta. Here a Chat Completions chunk, or a Responses event (its class chosen by its
``type``), is validated by pydantic instead: the same model object, built by the compiled
validator; anything that does not validate takes the SDK's lenient path as before.
Built once per process (:func:`chat_app.model_provider.choose_model`).
"""

from __future__ import annotations

from functools import cache, cached_property
from typing import TYPE_CHECKING, Any, get_args

from openai import AsyncOpenAI
from openai.resources.chat import AsyncChat
from openai.resources.chat.completions import AsyncCompletions
from openai.resources.responses import AsyncResponses
from openai.types.chat import ChatCompletionChunk
from openai.types.responses import ResponseStreamEvent
from pydantic import BaseModel, ValidationError

if TYPE_CHECKING:
    import httpx2


def _as_given(name: str, value: Any, extra_body: Any) -> dict[str, Any]:
    """``extra_body`` carrying ``value`` (a list, or a plain string input) under ``name``."""
    given = value if isinstance(value, str) else list(value)
    return {**(extra_body or {}), name: given}


def _tools_as_given(params: dict[str, Any], extra_body: Any) -> Any:
    """``extra_body`` with the tool definitions, taken out of ``params`` (when there are any:
    an omitted ``tools`` stays with the SDK, which leaves it out of the request)."""
    tools = params.get("tools")
    if not isinstance(tools, list | tuple):
        return extra_body
    del params["tools"]
    return _as_given("tools", tools, extra_body)


class _Completions(AsyncCompletions):
    async def create(self, *, messages: Any, extra_body: Any = None, **params: Any) -> Any:
        body = _as_given("messages", messages, _tools_as_given(params, extra_body))
        return await super().create(messages=[], extra_body=body, **params)


class _Chat(AsyncChat):
    @cached_property
    def completions(self) -> AsyncCompletions:
        return _Completions(self._client)


class _Responses(AsyncResponses):
    async def create(self, *, input: Any = None, extra_body: Any = None, **params: Any) -> Any:
        extra_body = _tools_as_given(params, extra_body)
        if input is None:
            return await super().create(extra_body=extra_body, **params)
        body = _as_given("input", input, extra_body)
        return await super().create(input=[], extra_body=body, **params)


@cache
def _response_events() -> dict[str, type[BaseModel]]:
    """Responses stream event classes by their ``type`` (read from the SDK's event union)."""
    events = get_args(ResponseStreamEvent)[0]  # Annotated[Union[...], discriminator]
    return {
        kind: event
        for event in get_args(events)
        for kind in get_args(event.model_fields["type"].annotation)
    }


def _validated(data: Any, cast_to: Any) -> BaseModel | None:
    """``data`` as ``cast_to`` when it is a chunk or stream event that validates, else None."""
    if not isinstance(data, dict):
        return None
    if cast_to is ChatCompletionChunk:
        model: type[BaseModel] | None = ChatCompletionChunk
    elif cast_to is ResponseStreamEvent:
        model = _response_events().get(data.get("type"))  # type: ignore[arg-type]
    else:
        return None
    if model is None:
        return None
    try:
        return model.model_validate(data)
    except ValidationError:
        return None


class ModelClient(AsyncOpenAI):
    """``AsyncOpenAI`` whose chat completions and responses send the conversation untransformed,
    and whose streamed chunks and events are built by pydantic's validator."""

    @cached_property
    def chat(self) -> AsyncChat:
        return _Chat(self)

    @cached_property
    def responses(self) -> AsyncResponses:
        return _Responses(self)

    def _process_response_data(
        self, *, data: object, cast_to: type[Any], response: httpx2.Response
    ) -> Any:
        validated = _validated(data, cast_to)
        if validated is not None:
            return validated
        return super()._process_response_data(data=data, cast_to=cast_to, response=response)
