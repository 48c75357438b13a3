"""Which model answers: OpenAI, an OpenAI-compatible server, or the built-in offline model.

* ``OPENAI_BASE_URL`` set: any OpenAI-compatible server, through the Chat Completions API (the one
  API such servers share) unless ``OPENAI_API=responses``; the key is optional there.
* else a key (``OPENAI_API_KEY`` or ``OPENAI_API_KEY_SECRET_ARN``): OpenAI's Responses API (or
  Chat Completions with ``OPENAI_API=chat_completions``).
* else the :class:`~chat_app.offline_model.OfflineModel`, so a fresh checkout works offline.

Privacy defaults (README, "Privacy"): Agents SDK tracing, which would export prompts and tool
data to OpenAI whenever a key is around, is switched off for the process at init unless
``AGENT_TRACING=openai`` (:func:`configure_tracing`); Responses API requests carry
``store: false`` unless ``OPENAI_STORE=true`` (:func:`model_settings`).

The key is handed to the OpenAI client only. A key from Secrets Manager is read lazily through an
async key provider the client calls per request: no AWS call at cold start, and a rotated key is
picked up when the Powertools cache entry expires. Nothing here logs the key, and it never
goes near the agent's instructions.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from agents import (
    Model,
    ModelSettings,
    OpenAIChatCompletionsModel,
    OpenAIResponsesModel,
    set_trace_provider,
    set_tracing_disabled,
    set_tracing_export_api_key,
)
from agents.tracing.provider import DefaultTraceProvider
from chatkit_backend.caller import Caller
from chatkit_backend.errors import ConfigurationError
from chatkit_backend.secrets import get_secret_value
from chatkit_backend.settings import Settings
from openai import AsyncOpenAI
from openai.types.shared import Reasoning

from .offline_model import OfflineModel

logger = logging.getLogger(__name__)

NO_KEY = "not-needed"
"""Sent to an OpenAI-compatible server when no key is configured (the client insists on one)."""

SECRET_KEY_FIELDS = ("api_key", "OPENAI_API_KEY")
"""Accepted fields when the secret is a JSON object rather than the bare key."""

ApiKey = str | Callable[[], Awaitable[str]]


def api_key(settings: Settings) -> ApiKey | None:
    """The key as the OpenAI client takes it: a string, an async provider, or None (no key)."""
    if settings.openai_api_key is not None:
        return settings.openai_api_key.get_secret_value()
    arn = settings.openai_api_key_secret_arn
    if not arn:
        return None

    async def from_secret() -> str:
        return key_from_secret(await asyncio.to_thread(get_secret_value, arn))

    return from_secret


def key_from_secret(raw: str) -> str:
    """The key inside a secret string: the bare key, or a JSON object with an ``api_key`` field."""
    text = raw.strip()
    if text.startswith("{"):
        try:
            fields = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigurationError("the model API key secret is not valid JSON") from exc
        key = next((fields[name] for name in SECRET_KEY_FIELDS if fields.get(name)), None)
        if not isinstance(key, str):
            raise ConfigurationError(
                f"the model API key secret has none of the fields {', '.join(SECRET_KEY_FIELDS)}"
            )
        return key
    if not text:
        raise ConfigurationError("the model API key secret is empty")
    return text


@dataclass(frozen=True, slots=True)
class ModelProvider:
    """The configured provider: its HTTP client and which API its chat models speak.

    Builds the model of a turn by name (the composer's model picker), and serves the other
    calls made to the same provider: generated titles and dictation.
    """

    client: AsyncOpenAI
    chat_completions: bool

    def model(self, name: str) -> Model:
        if self.chat_completions:
            return OpenAIChatCompletionsModel(model=name, openai_client=self.client)
        return OpenAIResponsesModel(model=name, openai_client=self.client)


@dataclass(frozen=True, slots=True)
class ModelChoice:
    """The model and the provider it runs on (``None`` for the offline model).

    The provider's client is kept so its pooled connections can be closed before a SnapStart
    snapshot without reaching into the SDK model's private attributes.
    """

    model: Model
    provider: ModelProvider | None

    @property
    def client(self) -> AsyncOpenAI | None:
        return self.provider.client if self.provider is not None else None


def choose_model(settings: Settings) -> ModelChoice:
    """The model the settings ask for (build once per process; it holds an HTTP client)."""
    key = api_key(settings)
    base_url = settings.openai_base_url
    if base_url is None and key is None:
        logger.info("model: the built-in offline model (no OPENAI_API_KEY configured)")
        return ModelChoice(OfflineModel(), None)
    from .model_client import ModelClient  # the openai resources it extends: only for a provider

    provider = ModelProvider(
        ModelClient(api_key=key or NO_KEY, base_url=base_url), uses_chat_completions(settings)
    )
    where = f"OpenAI-compatible server {urlsplit(base_url).hostname}" if base_url else "OpenAI"
    api = "Chat Completions" if provider.chat_completions else "Responses"
    logger.info("model: %s via the %s API of %s", settings.model_name, api, where)
    return ModelChoice(provider.model(settings.model_name), provider)


def build_model(settings: Settings) -> Model:
    """The model alone (see :func:`choose_model`)."""
    return choose_model(settings).model


def uses_chat_completions(settings: Settings) -> bool:
    """``OPENAI_API``, or for ``auto``: Chat Completions exactly when a base URL is set."""
    if settings.openai_api == "auto":
        return settings.openai_base_url is not None
    return settings.openai_api == "chat_completions"


def configure_tracing(settings: Settings) -> bool:
    """Switch Agents SDK tracing on only for ``AGENT_TRACING=openai``; True when it is on.

    Called once per process before any run: the SDK's trace provider is process-wide, and a
    disabled provider records nothing whatever a run's own ``RunConfig`` says. Off, the process
    gets a provider with no processor at all, so the SDK never builds its exporter (nor the
    HTTP client that exporter holds). When on, the exporter gets the model key (read from
    Secrets Manager here, once, if that is where it is).
    """
    if settings.agent_tracing != "openai":
        provider = DefaultTraceProvider()
        provider.set_disabled(True)
        set_trace_provider(provider)
        return False
    set_tracing_disabled(False)
    if settings.openai_api_key is not None:
        set_tracing_export_api_key(settings.openai_api_key.get_secret_value())
    elif settings.openai_api_key_secret_arn:
        set_tracing_export_api_key(
            key_from_secret(get_secret_value(settings.openai_api_key_secret_arn))
        )
    logger.warning("AGENT_TRACING=openai: prompts and tool data are exported to OpenAI traces")
    return True


def model_settings(settings: Settings, model: Model, caller: Caller | None = None) -> ModelSettings:
    """The settings of every model call of a turn.

    ``store: false`` on the Responses API unless ``OPENAI_STORE=true`` (Chat Completions requests
    carry no ``store``: OpenAI does not store them by default, and other providers may reject
    the parameter). The output cap ``MODEL_MAX_OUTPUT_TOKENS`` on both APIs, and the caller's
    :func:`safety_identifier` (a keyed hash, never the user id itself). With
    ``REASONING_SUMMARY``, the reasoning summary is requested (Responses API only).
    """
    extra = {"safety_identifier": safety_identifier(settings, caller)} if caller else None
    common = ModelSettings(max_tokens=settings.model_max_output_tokens, extra_args=extra)
    if not isinstance(model, OpenAIResponsesModel):
        return common
    if settings.reasoning_summary == "off":
        return common.resolve(ModelSettings(store=settings.openai_store))
    # Reasoning items go back to the model within a run; unstored, they need their content.
    return common.resolve(
        ModelSettings(
            store=settings.openai_store,
            reasoning=Reasoning(summary=settings.reasoning_summary),
            response_include=None if settings.openai_store else ["reasoning.encrypted_content"],
        )
    )


LOCAL_SAFETY_KEY = b"chatkit-backend local safety identifier"
"""The key of :func:`safety_identifier` when none is configured and there is no JWT secret:
the local stage only ever sends it to a model the developer chose."""


def safety_identifier(settings: Settings, caller: Caller) -> str:
    """A stable, non-reversible per-user id for the model provider's abuse detection.

    HMAC-SHA256 of the user id under ``SAFETY_IDENTIFIER_KEY``, else under a key derived from
    the JWT secret, else a fixed local key; the provider can tell one user's requests apart
    without learning who they are.
    """
    if settings.safety_identifier_key is not None:
        key = settings.safety_identifier_key.get_secret_value().encode()
    elif settings.jwt_secret is not None:
        key = hashlib.sha256(
            b"safety-identifier:" + settings.jwt_secret.get_secret_value().encode()
        ).digest()
    else:
        key = LOCAL_SAFETY_KEY
    digest = hmac.new(key, caller.user_id.encode(), hashlib.sha256).hexdigest()
    return f"user-{digest[:32]}"
