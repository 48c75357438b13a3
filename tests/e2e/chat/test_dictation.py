"""Dictation (``input.transcribe``) over real HTTP: the chat server, the ``openai`` client, the
fake's ``/v1/audio/transcriptions`` (both model APIs' servers: the route is the same).

What the fake received (model, file name and type, the exact bytes) is asserted, and every
failure is the JSON error it should be: too large (413), a format the route does not take (400),
a provider without the route (501), a failing or rate-limited provider (503), no token (401).
The offline model answers its documented text.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable

import httpx
import pytest
from chat_app.transcription import OFFLINE_TRANSCRIPT
from chatkit_backend.caller import Caller

from tests.e2e.chat.chat_support import (
    ChatServerThread,
    client_of,
    factory_with,
    headers_for,
)
from tests.support.fake_openai import FakeOpenAI, error, text

MAX_AUDIO_BYTES = 1_500_000
"""Over the default MAX_REQUEST_BYTES once in base64: the raised limit is what lets it through."""


SERVER_SETTINGS = {"max_audio_bytes": MAX_AUDIO_BYTES}


def transcribe(audio: bytes, mime_type: str = "audio/webm;codecs=opus") -> dict[str, object]:
    return {
        "type": "input.transcribe",
        "params": {"audio_base64": base64.b64encode(audio).decode(), "mime_type": mime_type},
    }


async def test_audio_is_transcribed_by_the_provider(
    module_http: httpx.AsyncClient, fake: FakeOpenAI, alice: Caller
) -> None:
    audio = os.urandom(MAX_AUDIO_BYTES)  # the largest accepted, bigger than MAX_REQUEST_BYTES
    fake.transcriptions.queue(text("add a task to water the plants"))
    response = await module_http.post(
        "/chatkit", json=transcribe(audio), headers=headers_for(alice)
    )

    assert response.status_code == 200, response.text
    assert response.json() == {"text": "add a task to water the plants"}
    (heard,) = fake.transcriptions.received
    assert heard.fields["model"] == "gpt-4o-mini-transcribe"
    assert heard.file == ("dictation.webm", "audio/webm")
    assert heard.audio == audio
    assert alice.user_id not in str(heard.fields)


@pytest.mark.parametrize(
    ("mime_type", "size", "status"),
    [
        ("audio/webm", MAX_AUDIO_BYTES + 1, 413),
        ("video/webm", 1000, 400),
        ("audio/x-unknown", 1000, 400),
        ("audio/ogg", 0, 400),
    ],
)
async def test_refused_audio_never_reaches_the_provider(
    module_http: httpx.AsyncClient,
    fake: FakeOpenAI,
    alice: Caller,
    mime_type: str,
    size: int,
    status: int,
) -> None:
    response = await module_http.post(
        "/chatkit", json=transcribe(os.urandom(size), mime_type), headers=headers_for(alice)
    )
    assert response.status_code == status, response.text
    assert response.json()["detail"]
    assert fake.transcriptions.received == []


async def test_a_body_too_large_for_any_other_request_is_still_refused(
    module_http: httpx.AsyncClient, fake: FakeOpenAI, alice: Caller
) -> None:
    padding = "x" * 1_200_000  # within the raised limit, over MAX_REQUEST_BYTES
    body = {"type": "threads.list", "params": {"limit": 5}, "padding": padding}
    response = await module_http.post("/chatkit", json=body, headers=headers_for(alice))
    assert response.status_code == 413, response.text


@pytest.mark.parametrize(
    ("provider_status", "status"), [(404, 501), (500, 503), (429, 503), (401, 503)]
)
async def test_provider_failures_are_clear_json_errors(
    module_http: httpx.AsyncClient,
    fake: FakeOpenAI,
    alice: Caller,
    provider_status: int,
    status: int,
) -> None:
    fake.transcriptions.queue(*[error(provider_status)] * 3)  # the client retries 5xx and 429
    response = await module_http.post(
        "/chatkit", json=transcribe(b"\x1aE\xdf\xa3 some audio"), headers=headers_for(alice)
    )
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json()["detail"]
    if status == 503:
        assert response.headers["retry-after"]


async def test_the_caller_must_be_signed_in(
    module_http: httpx.AsyncClient, fake: FakeOpenAI
) -> None:
    response = await module_http.post("/chatkit", json=transcribe(b"audio"))
    assert response.status_code == 401
    assert fake.transcriptions.received == []


async def test_the_offline_model_answers_its_documented_text(
    start_server: Callable[..., ChatServerThread], alice: Caller
) -> None:
    server = start_server(factory_with(None))  # no key, no base URL: the offline model
    async with client_of(server) as client:
        response = await client.post(
            "/chatkit", json=transcribe(b"audio", "audio/ogg"), headers=headers_for(alice)
        )
    assert response.status_code == 200, response.text
    assert response.json() == {"text": OFFLINE_TRANSCRIPT}
