"""Dictation: ``input.transcribe`` audio to the composer's text, through the provider.

The audio goes to the configured provider's ``/audio/transcriptions`` route through the
``openai`` client (``TRANSCRIBE_MODEL``; with ``OPENAI_BASE_URL`` the same route, which many
compatible servers serve). What can go wrong is answered as the client error it is, never a
500: an audio format the route does not take (400), audio over ``MAX_AUDIO_BYTES`` (413), a
provider without the route (501), a provider that fails, cannot be reached or is rate limited
(503, with ``Retry-After``). The offline model "transcribes" to :data:`OFFLINE_TRANSCRIPT`
so ``make dev`` shows the whole path. Nothing of the audio or the text is logged (docs/composer.md).
"""

from __future__ import annotations

import openai
from chatkit.types import AudioInput, TranscriptionResult
from chatkit_backend.errors import (
    BadRequest,
    NotSupported,
    PayloadTooLarge,
    Unavailable,
)
from chatkit_backend.observability import get_logger
from chatkit_backend.settings import Settings

from .model_provider import ModelProvider

OFFLINE_TRANSCRIPT = "Dictation reached the offline model: add a task to try dictation"
"""What the offline model hears in any audio (a todo request it then acts on)."""

AUDIO_FILE_NAMES = {
    "audio/webm": "dictation.webm",
    "audio/ogg": "dictation.ogg",
    "audio/mp4": "dictation.mp4",
    "audio/mpeg": "dictation.mp3",
    "audio/wav": "dictation.wav",
    "audio/x-wav": "dictation.wav",
    "audio/flac": "dictation.flac",
}
"""The media types accepted, with the file name sent for each (providers read the format from
the name). ChatKit's recorder sends the first three."""

TRANSCRIBE_TIMEOUT_SECONDS = 60.0
"""How long one transcription request may take at the provider."""


class Transcriber:
    """Turns dictated audio into text (one per process, over the agent's provider)."""

    def __init__(self, provider: ModelProvider | None, settings: Settings, *, offline: bool):
        self._provider = provider
        self._settings = settings
        self._offline = offline

    async def transcribe(self, audio: AudioInput) -> TranscriptionResult:
        file_name = AUDIO_FILE_NAMES.get(audio.media_type.strip().lower())
        if file_name is None:
            accepted = ", ".join(sorted(set(AUDIO_FILE_NAMES)))
            raise BadRequest(f"Unsupported audio format {audio.media_type!r} (use {accepted})")
        if not audio.data:
            raise BadRequest("The audio is empty")
        if len(audio.data) > self._settings.max_audio_bytes:
            raise PayloadTooLarge(
                f"Audio too large ({len(audio.data)} bytes, at most "
                f"{self._settings.max_audio_bytes})"
            )
        if self._offline:
            return TranscriptionResult(text=OFFLINE_TRANSCRIPT)
        if self._provider is None:
            raise NotSupported("Dictation is not configured on this server")
        return TranscriptionResult(text=await self._request(audio, file_name))

    async def _request(self, audio: AudioInput, file_name: str) -> str:
        client = self._provider.client if self._provider is not None else None
        assert client is not None
        try:
            transcription = await client.with_options(
                timeout=TRANSCRIBE_TIMEOUT_SECONDS
            ).audio.transcriptions.create(
                model=self._settings.transcribe_model,
                file=(file_name, audio.data, audio.media_type),
            )
        except openai.NotFoundError as exc:
            raise NotSupported("The model provider does not offer transcription") from exc
        except openai.BadRequestError as exc:
            raise BadRequest("The provider could not transcribe this audio") from exc
        except openai.RateLimitError as exc:
            raise Unavailable("Dictation is rate limited right now. Please retry.") from exc
        except openai.APIStatusError as exc:
            _log_failure(exc, exc.status_code)
            raise Unavailable("The transcription provider failed. Please retry shortly.") from exc
        except openai.APIConnectionError as exc:  # timeouts included
            _log_failure(exc, None)
            raise Unavailable("The transcription provider cannot be reached.") from exc
        return transcription.text.strip()


def _log_failure(exc: Exception, status: int | None) -> None:
    get_logger().warning(
        "transcription failed", extra={"error": type(exc).__name__, "provider_status": status}
    )
