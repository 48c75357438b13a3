"""The model's HTTP client: ``AsyncOpenAI`` sending the turn's conversation as it was built.

Before each request the openai SDK walks every parameter against its ``TypedDict`` annotations
(to rename aliased keys and format annotated values). For the conversation, a turn's whole
history, that walk was the largest cost before the model was called, and it grew with the
thread while changing nothing: message and input items have no aliased or formatted fields; nor
have the tool definitions (their JSON schemas walked key by key on every call). Here the
conversation (``messages`` of Chat Completions, ``input`` of the Responses API) and ``tools``
go in ``extra_body``, which the SDK sends as given; every other parameter is still transformed.
Built once per process (:func:`chat_app.model_provider.choose_model`).
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from openai import AsyncOpenAI
from openai.resources.chat import AsyncChat
from openai.resources.chat.completions import AsyncCompletions
from openai.resources.responses import AsyncResponses


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


class ModelClient(AsyncOpenAI):
    """``AsyncOpenAI`` whose chat completions and responses send the conversation untransformed."""

    @cached_property
    def chat(self) -> AsyncChat:
        return _Chat(self)

    @cached_property
    def responses(self) -> AsyncResponses:
        return _Responses(self)
