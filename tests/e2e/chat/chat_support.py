"""Test doubles and helpers for the chat function's end-to-end tests.

* :class:`ChatServerThread`: the real app under a real uvicorn on 127.0.0.1, in a thread with its
  own event loop (its own engine too: async connections belong to the loop that made them), on
  the shared :class:`~tests.support.servers.UvicornThread`.
* :class:`SwitchModel`: the model of the server's agent factory; each test plugs in its own
  ``ScriptedModel`` (the server lives for the whole session).
* :func:`streamed_reply`: a scripted model step that streams a message delta by delta, and can
  wait on a :class:`Gate` after the first delta, fail half-way, or end with a tool call.
* SSE parsing and the ChatKit event-order check.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import tempfile
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, cast

import httpx
from agents import Model
from agents.testing import ModelStep, ScriptedModel
from chat_app.agent import AgentFactory
from chat_app.app import create_app
from chat_app.response_stream import ResponseStream
from chatkit.types import (
    AssistantMessageContentPartTextDelta,
    CustomTask,
    ThreadCreatedEvent,
    ThreadItemAddedEvent,
    ThreadItemDoneEvent,
    ThreadItemRemovedEvent,
    ThreadItemReplacedEvent,
    ThreadItemUpdatedEvent,
    ThreadStreamEvent,
    WorkflowItem,
)
from chatkit_backend.auth import build_authenticator
from chatkit_backend.caller import Caller
from chatkit_backend.db import Database
from chatkit_backend.settings import Settings
from openai.types.responses import ResponseFunctionToolCall, ResponseOutputItem
from pydantic import TypeAdapter

from tests.support.fake_openai import APIS, Api, FakeOpenAI
from tests.support.servers import UvicornThread, app_over
from tests.support.tokens import TEST_JWT_SECRET, auth_header

EVENTS: TypeAdapter[ThreadStreamEvent] = TypeAdapter(ThreadStreamEvent)


# --- the model --------------------------------------------------------------------------------


class SwitchModel(Model):
    """Forwards every call to ``current`` (a fresh ``ScriptedModel`` per test)."""

    def __init__(self) -> None:
        self.current: Model = ScriptedModel()

    async def get_response(self, *args: Any, **kwargs: Any) -> Any:
        return await self.current.get_response(*args, **kwargs)

    def stream_response(self, *args: Any, **kwargs: Any) -> Any:
        return self.current.stream_response(*args, **kwargs)


class Gate:
    """Holds a scripted model (in the server's loop) until the test thread opens it."""

    def __init__(self) -> None:
        self._opened = threading.Event()
        self.reached = threading.Event()

    def open(self) -> None:
        self._opened.set()

    async def wait(self) -> None:
        self.reached.set()
        await asyncio.to_thread(self._opened.wait)


def streamed_reply(
    deltas: Iterable[str],
    *,
    gate: Gate | None = None,
    error: Exception | None = None,
    call: ResponseOutputItem | None = None,
    message_id: str = "msg_reply",
) -> ModelStep:
    """A model step streaming ``deltas`` as one message, each delta its own event, no waits.

    ``deltas`` is consumed lazily, as the events are produced (a generator can stamp the time).
    ``gate``: wait on it after the first delta. ``error``: raise it after the last delta, before
    the message is done. ``call``: after the message, call this tool (the run then goes on to
    the next scripted step).
    """
    assert call is None or isinstance(call, ResponseFunctionToolCall)  # a tool call, if any
    return ModelStep.stream(lambda _call: _reply_events(deltas, gate, error, call, message_id))


async def _reply_events(
    deltas: Iterable[str],
    gate: Gate | None,
    error: Exception | None,
    call: ResponseFunctionToolCall | None,
    message_id: str,
) -> AsyncIterator[Any]:
    stream = ResponseStream(model="scripted", response_id="resp_scripted")
    for event in [*stream.start(), *stream.open_message(message_id)]:
        yield event
    for index, delta in enumerate(deltas):
        yield stream.text_delta(delta)
        if index == 0 and gate is not None:
            await gate.wait()
    if error is not None:
        raise error
    closing = stream.close_message()
    if call is not None:
        closing += stream.function_call(
            call.name, call.arguments, call_id=call.call_id, item_id=call.id
        )
    for event in [*closing, stream.completed()]:
        yield event


# --- the server -------------------------------------------------------------------------------


def server_settings(pg_url: str, **overrides: Any) -> Settings:
    """The server's settings: this run's database, HS256 test tokens, no model key or remotes,
    and no per-user turn limits (chaos and load tests run many turns of one user; the limits'
    own tests, ``test_turn_limits_http.py``, set them)."""
    values: dict[str, Any] = {
        "user_turns_per_minute": 0,
        "user_concurrent_turns": 0,
        "user_tokens_per_day": 0,
        "database_url": pg_url,
        "data_dir": Path(tempfile.mkdtemp(prefix="ckb-chat-")),  # local attachment files
        "jwt_secret": TEST_JWT_SECRET,
        "openai_api_key": None,
        "openai_api_key_secret_arn": None,
        "openai_base_url": None,
        "mcp_servers": [],
        "cors_allow_origins": [],
        **overrides,
    }
    return Settings(**values)


AgentsBuilder = Callable[[Settings, Database], Any]
"""Builds the server's agent source (``AgentFactory``-like) inside the server's thread."""


def factory_with(model: Model | None) -> AgentsBuilder:
    """The real ``AgentFactory`` with ``model`` (None: what the settings choose, i.e. offline)."""
    return lambda settings, database: AgentFactory(settings, database, model=model)


class ChatServerThread(UvicornThread):
    """The chat app under uvicorn on a free loopback port, in a background thread."""

    def __init__(
        self,
        settings: Settings,
        agents: AgentsBuilder,
        limits_clock: Callable[[], float] | None = None,
    ) -> None:
        self.settings = settings
        self.database = Database.from_url(settings.database_url or "", settings)
        """The server's own database (engine); its connections are made in the server's loop."""
        app = app_over(
            self.database,
            lambda database: create_app(
                settings=settings,
                database=database,
                authenticator=build_authenticator(settings),
                agent_factory=agents(settings, database),
                limits_clock=limits_clock,
            ),
        )
        super().__init__(app, name="chat-server")


@contextmanager
def servers_per_api(
    pg_url: str,
    fake_openai: FakeOpenAI,
    limits_clock: Callable[[], float] | None = None,
    **overrides: Any,
) -> Iterator[dict[Api, ChatServerThread]]:
    """One chat server per model API, its model built from settings (``OPENAI_BASE_URL``)."""
    servers: dict[Api, ChatServerThread] = {}
    try:
        for api in APIS:
            settings = server_settings(
                pg_url, openai_base_url=fake_openai.base_url, openai_api=api, **overrides
            )
            servers[api] = ChatServerThread(settings, factory_with(None), limits_clock).start()
        yield servers
    finally:
        for server in servers.values():
            server.stop()


@asynccontextmanager
async def client_of(server: ChatServerThread) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of ``server``."""
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        yield client


# --- SSE --------------------------------------------------------------------------------------


async def sse_messages(response: httpx.Response) -> AsyncGenerator[dict[str, str]]:
    """The SSE messages of a streaming response as ``{"event"?, "data"}`` (comments skipped).

    Its reading of the response is closed with it (``aclosing`` it when leaving early): left to
    the garbage collector, httpx's stream iterator would be finalised during a later test."""
    data: list[str] = []
    event: str | None = None
    reading = cast(AsyncGenerator[str], response.aiter_lines())  # an async generator in fact
    async with contextlib.aclosing(reading) as lines:
        async for line in lines:
            if line == "":
                if data:
                    yield {"data": "\n".join(data), **({"event": event} if event else {})}
                data, event = [], None
            elif line.startswith("data:"):
                data.append(line[6:] if line.startswith("data: ") else line[5:])
            elif line.startswith("event:"):
                event = line[6:].strip()
    if data:
        yield {"data": "\n".join(data), **({"event": event} if event else {})}


def parse_events(datas: Sequence[str]) -> list[ThreadStreamEvent]:
    """Every SSE data of a ChatKit stream parsed as the SDK's ``ThreadStreamEvent`` union."""
    return [EVENTS.validate_json(data) for data in datas]


def assert_documented_order(events: Sequence[ThreadStreamEvent], *, new_thread: bool) -> None:
    """The order ChatKit documents and its client relies on.

    ``thread.created`` first for a new thread; one ``stream_options`` before any item activity
    of the response; each item's ``added`` before its ``updated``s, ``done`` last (an item may be
    ``done`` without ``added``; ``removed`` ends one); ``error``, if any, ends the response:
    only the SDK's final ``thread.updated`` (a title set during the turn) may follow it.
    """
    types = [event.type for event in events]
    if new_thread:
        assert types[0] == "thread.created", types
    assert types.count("stream_options") == 1, types
    options_at = types.index("stream_options")
    state: dict[str, str] = {}
    for position, event in enumerate(events):
        item_id = _item_id(event)
        if item_id is None:
            continue
        if event.type in ("thread.item.added", "thread.item.updated"):
            assert position > options_at, (position, types)
        previous = state.get(item_id)
        if event.type == "thread.item.added":
            assert previous is None, (item_id, types)
            state[item_id] = "open"
        elif event.type == "thread.item.updated":
            assert previous == "open", (item_id, types)
        elif event.type in ("thread.item.done", "thread.item.removed"):
            assert previous in (None, "open"), (item_id, types)
            state[item_id] = "closed"
    assert all(value == "closed" for value in state.values()), state
    if "error" in types:
        assert set(types[types.index("error") + 1 :]) <= {"thread.updated"}, types


def text_deltas(events: Sequence[ThreadStreamEvent]) -> list[str]:
    """The assistant text deltas of a ChatKit stream, in order."""
    return [
        event.update.delta
        for event in events
        if isinstance(event, ThreadItemUpdatedEvent)
        and isinstance(event.update, AssistantMessageContentPartTextDelta)
    ]


def tool_workflows(events: Sequence[ThreadStreamEvent]) -> list[WorkflowItem]:
    """The workflow items a ChatKit stream finished (``done``), in order."""
    return [
        event.item
        for event in events
        if isinstance(event, ThreadItemDoneEvent) and isinstance(event.item, WorkflowItem)
    ]


def task_lines(workflow: WorkflowItem) -> list[tuple[str | None, str, str | None]]:
    """``(title, status, content)`` of each custom task of ``workflow``."""
    return [
        (task.title, task.status_indicator, task.content)
        for task in workflow.workflow.tasks
        if isinstance(task, CustomTask)
    ]


def _item_id(event: ThreadStreamEvent) -> str | None:
    if isinstance(event, ThreadItemAddedEvent | ThreadItemDoneEvent | ThreadItemReplacedEvent):
        return event.item.id
    if isinstance(event, ThreadItemUpdatedEvent | ThreadItemRemovedEvent):
        return event.item_id
    return None


def user_input(text: str, attachments: Sequence[str] = ()) -> dict[str, Any]:
    """The ``input`` of a ChatKit user message request."""
    return {
        "content": [{"type": "input_text", "text": text}],
        "attachments": list(attachments),
        "inference_options": {},
    }


def json_body(response: httpx.Response) -> Any:
    return json.loads(response.content)


def headers_for(user: Caller) -> dict[str, str]:
    """A valid bearer token for ``user``."""
    return auth_header(user.user_id)


class Streamed:
    """A finished streaming response: status, headers and the SSE datas (ChatKit-parsed if 200)."""

    def __init__(self, response: httpx.Response, datas: list[str]) -> None:
        self.status_code = response.status_code
        self.headers = response.headers
        self.datas = datas

    @property
    def events(self) -> list[ThreadStreamEvent]:
        return parse_events(self.datas)

    @property
    def thread_id(self) -> str:
        """The id of the thread a ``threads.create`` stream created."""
        first = self.events[0]
        assert isinstance(first, ThreadCreatedEvent), first
        return first.thread.id


async def stream(
    client: httpx.AsyncClient,
    user: Caller,
    body: Any,
    *,
    open_on_first_delta: Gate | None = None,
) -> Streamed:
    """POST a ChatKit request as ``user`` and read the whole response (SSE datas, or none for
    JSON). ``open_on_first_delta``: open that gate once the first text delta has arrived."""
    async with client.stream("POST", "/chatkit", json=body, headers=headers_for(user)) as response:
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            datas = []
            async for message in sse_messages(response):
                datas.append(message["data"])
                if open_on_first_delta is not None and "text_delta" in message["data"]:
                    open_on_first_delta.open()
        else:
            await response.aread()
            datas = []
        return Streamed(response, datas)


async def post(client: httpx.AsyncClient, user: Caller, body: Any) -> httpx.Response:
    """POST a JSON (non-streaming) ChatKit request as ``user``."""
    return await client.post("/chatkit", json=body, headers=headers_for(user))


async def eventually(check: Callable[[], Any], attempts: int = 500) -> Any:
    """Poll ``check`` (a plain or an async callable) until it returns something truthy."""
    for _ in range(attempts):
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        await asyncio.sleep(0.02)
    raise AssertionError("condition never became true")
