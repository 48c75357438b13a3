"""Nothing leaves for OpenAI's traces or the provider's storage unless asked, over the real model
path (the ``openai`` client over HTTP to the fake OpenAI server).

A recording trace processor replaces the SDK's exporter for these tests: with ``OPENAI_API_KEY``
set and tracing left at its default, a whole turn records zero traces and spans; the control
(``AGENT_TRACING=openai``) shows the same recorder does see a run's spans. The fake server
receives ``"store": false`` on every Responses API request (``true`` only with
``OPENAI_STORE=true``) and no ``store`` on Chat Completions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from agents import Runner, set_trace_processors, set_tracing_disabled
from agents.testing import ScriptedModel, assistant_message
from agents.tracing import Span, Trace, TracingProcessor
from agents.tracing.setup import get_trace_provider
from chat_app.agent import AgentFactory
from chat_app.model_provider import configure_tracing
from chatkit_backend.caller import Caller
from chatkit_backend.db import Database
from chatkit_backend.settings import Settings
from pydantic import ValidationError

from tests.e2e.chat.chat_support import ChatServerThread, factory_with
from tests.e2e.chat.protocol_clients import send
from tests.support.fake_openai import FakeOpenAI, text

TEST_KEY = "sk-test-key-for-the-fake"


class RecordingProcessor(TracingProcessor):
    """Every trace and span the SDK would have exported."""

    def __init__(self) -> None:
        self.traces: list[Trace] = []
        self.spans: list[Span[Any]] = []

    def on_trace_start(self, trace: Trace) -> None:
        self.traces.append(trace)

    def on_trace_end(self, trace: Trace) -> None:
        pass

    def on_span_start(self, span: Span[Any]) -> None:
        self.spans.append(span)

    def on_span_end(self, span: Span[Any]) -> None:
        pass

    def shutdown(self) -> None:
        pass

    def force_flush(self) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[RecordingProcessor]:
    """The only trace processor (no exporter) with tracing on, as in a fresh process."""
    provider = get_trace_provider()
    original = list(provider._multi_processor._processors)  # type: ignore[attr-defined]
    recording = RecordingProcessor()
    set_trace_processors([recording])
    set_tracing_disabled(False)
    try:
        yield recording
    finally:
        set_trace_processors(original)
        set_tracing_disabled(True)  # the chat tests' session default


async def turn(server: ChatServerThread, user: Caller, message: str) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        answer = await send(client, user, "chatkit", message)
    assert answer.errors == [], answer.datas


def responses_server(
    start_server: Callable[..., ChatServerThread], fake: FakeOpenAI, **overrides: Any
) -> ChatServerThread:
    """A chat server with a key, its model the fake's Responses API."""
    return start_server(
        factory_with(None),
        openai_api_key=TEST_KEY,
        openai_base_url=fake.base_url,
        openai_api="responses",
        **overrides,
    )


async def test_a_turn_with_a_key_exports_no_trace_and_is_not_stored(
    start_server: Callable[..., ChatServerThread],
    fake: FakeOpenAI,
    recorder: RecordingProcessor,
    alice: Caller,
) -> None:
    server = responses_server(start_server, fake)
    fake.script(text("Hello", " there"))
    await turn(server, alice, "a private message")
    assert recorder.traces == []
    assert recorder.spans == []
    [request] = fake.requests
    assert request.api == "responses"
    assert request.body["store"] is False


async def test_openai_store_true_lets_the_provider_store(
    start_server: Callable[..., ChatServerThread], fake: FakeOpenAI, alice: Caller
) -> None:
    server = responses_server(start_server, fake, openai_store=True)
    fake.script(text("Stored."))
    await turn(server, alice, "store this one")
    assert fake.requests[-1].body["store"] is True


async def test_chat_completions_carry_no_store_parameter(
    start_server: Callable[..., ChatServerThread], fake: FakeOpenAI, alice: Caller
) -> None:
    server = start_server(
        factory_with(None), openai_base_url=fake.base_url, openai_api="chat_completions"
    )
    fake.script(text("Hi."))
    await turn(server, alice, "hello")
    assert "store" not in fake.requests[-1].body


async def test_the_recorder_sees_spans_when_tracing_is_asked_for(
    pg_database: Database, recorder: RecordingProcessor
) -> None:
    """The control: the same recorder records a run once ``AGENT_TRACING=openai``."""
    settings = Settings(
        agent_tracing="openai", openai_api_key=TEST_KEY, openai_base_url=None, mcp_servers=[]
    )
    factory = AgentFactory(settings, pg_database, model=ScriptedModel([[assistant_message("hi")]]))
    async with factory.open(Caller(user_id="u-traced")) as agent:
        await Runner.run(agent, "hello")
    assert len(recorder.traces) == 1
    assert recorder.spans


def test_tracing_is_off_unless_asked(recorder: RecordingProcessor) -> None:
    assert configure_tracing(Settings(openai_api_key=TEST_KEY)) is False
    assert get_trace_provider()._disabled  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "base_url", ["https://api.other-provider.example/v1", "http://127.0.0.1:8080/v1"]
)
def test_tracing_is_refused_with_another_providers_base_url(base_url: str) -> None:
    with pytest.raises(ValidationError, match="AGENT_TRACING=openai"):
        Settings(agent_tracing="openai", openai_base_url=base_url)


def test_tracing_with_openais_own_base_url_is_accepted() -> None:
    settings = Settings(agent_tracing="openai", openai_base_url="https://api.openai.com/v1")
    assert settings.agent_tracing == "openai"
