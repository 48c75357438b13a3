"""Generated thread titles: a short title written by the model beside the first answer.

:class:`TitleWriter` asks the configured provider (``TITLE_MODEL``, else the turn's model) for a
title of the thread's first message. :class:`PendingTitle` runs that request as a task started
with the turn, so the answer's first delta never waits for it; once the answer is done the turn
waits for the title at most ``TITLE_TIMEOUT_SECONDS``. Any failure (provider error, timeout, an
empty or unusable answer) gives ``None``: the first message, cut, stays the title.

Privacy (docs/privacy.md) holds for this call too: it goes through the ``openai`` client, not an
Agents SDK run, so there is no trace to export; a Responses request carries ``store`` as
``OPENAI_STORE`` says (false by default); the prompt holds the message text and nothing about
the user. See docs/composer.md.
"""

from __future__ import annotations

import asyncio
import re

from chatkit_backend.observability import get_logger
from chatkit_backend.settings import Settings

from .model_provider import ModelProvider

TITLES_OFF = "off"
"""``TITLE_MODEL`` value that turns generated titles off."""

TITLE_INSTRUCTIONS = (
    "Write a short title, at most six words, for a conversation that starts with the message "
    "below. Answer with the title alone: no quotes, no final punctuation."
)

GENERATED_TITLE_MAX_CHARS = 60
"""Longest generated title kept (cut at a word boundary), like the first-message rule."""

QUOTES = "\"'`*\u201c\u201d\u2018\u2019"
"""What a model may wrap a title in (straight and typographic quotes, emphasis)."""

MESSAGE_MAX_CHARS = 2_000
"""How much of the first message the title request carries."""


class TitleWriter:
    """Asks the provider for a title (one request, non-streamed)."""

    def __init__(self, provider: ModelProvider, settings: Settings) -> None:
        self._provider = provider
        self._settings = settings

    @classmethod
    def configured(cls, provider: ModelProvider | None, settings: Settings) -> TitleWriter | None:
        """The writer, unless there is no provider (offline) or ``TITLE_MODEL`` is off."""
        if provider is None or settings.title_model == TITLES_OFF:
            return None
        return cls(provider, settings)

    def model_for(self, turn_model: str) -> str:
        return self._settings.title_model or turn_model

    async def write(self, message: str, turn_model: str) -> str | None:
        """The title of a conversation starting with ``message``, or None if unusable."""
        model = self.model_for(turn_model)
        text = message[:MESSAGE_MAX_CHARS]
        client = self._provider.client
        if self._provider.chat_completions:
            completion = await client.chat.completions.create(
                model=model,
                messages=[
                    {"role": "system", "content": TITLE_INSTRUCTIONS},
                    {"role": "user", "content": text},
                ],
            )
            answer = completion.choices[0].message.content if completion.choices else None
        else:
            response = await client.responses.create(
                model=model,
                instructions=TITLE_INSTRUCTIONS,
                input=text,
                store=self._settings.openai_store,
            )
            answer = response.output_text
        return clean_title(answer or "")

    def start(self, message: str, turn_model: str) -> PendingTitle:
        """The request, running as a task from now on."""
        return PendingTitle(
            asyncio.create_task(self.write(message, turn_model)),
            self._settings.title_timeout_seconds,
        )


class PendingTitle:
    """A title request running beside the turn (see the module docstring)."""

    def __init__(self, task: asyncio.Task[str | None], timeout_seconds: float) -> None:
        self._task = task
        self._timeout = timeout_seconds
        # A request left behind (the turn failed first) must not log "never retrieved".
        task.add_done_callback(lambda done: done.cancelled() or done.exception())

    async def result(self) -> str | None:
        """The title, or None after any failure or once the timeout passed (logged, no text)."""
        try:
            return await asyncio.wait_for(self._task, self._timeout)
        except Exception as exc:  # any failure keeps the first message as the title
            get_logger().warning("generated title unavailable", extra={"error": type(exc).__name__})
            return None

    def cancel(self) -> None:
        """Stop the request if it still runs (the turn ended without waiting for it)."""
        self._task.cancel()


def clean_title(answer: str) -> str | None:
    """The model's answer as a title: one line, no surrounding quotes or final punctuation."""
    lines = [line.strip() for line in answer.strip().splitlines() if line.strip()]
    if not lines:
        return None
    text = re.sub(r"^(title\s*:\s*)", "", lines[0], flags=re.IGNORECASE)
    text = re.sub(r"\s+", " ", text).strip().lstrip(QUOTES).rstrip(" .!?;:," + QUOTES)
    text = text.replace("\x00", "").strip()
    if not text:
        return None
    if len(text) > GENERATED_TITLE_MAX_CHARS:
        cut = text[:GENERATED_TITLE_MAX_CHARS].rsplit(" ", 1)[0]
        text = cut.rstrip(" ,.;:-") + "…"
    return text
