"""Typed settings read from the environment, once per process.

One flat model keeps the configuration table in the README honest: each field is one environment
variable (upper-cased field name). Secrets are referenced by ARN and resolved lazily through
:mod:`chatkit_backend.secrets`, never stored in the environment of a deployed function.
"""

from __future__ import annotations

import ipaddress
import json
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

if TYPE_CHECKING:
    from .remote_mcp import RemoteMcpServer

    McpServers = list[RemoteMcpServer]
else:
    McpServers = list[Any]
"""``MCP_SERVERS``: :class:`~chatkit_backend.remote_mcp.RemoteMcpServer` entries, validated by
``Settings._server_entries``, which imports their models only when there are entries: a function
without remote servers (the CRUD ones, say) never builds them."""

StringList = Annotated[list[str], NoDecode]
"""A list read from one variable as ``a,b`` or as a JSON list (see ``_split_list``)."""

DEFAULT_ATTACHMENT_TYPES = (
    "image/png",
    "image/jpeg",
    "image/webp",
    "image/gif",
    "application/pdf",
    "text/plain",
    "text/markdown",
    "text/csv",
    "application/json",
)
"""What an attachment may be by default: images the model APIs read, PDF, and text-like files."""
FUNCTION_URL_REQUEST_BYTES = 6_000_000
"""The most a Lambda function URL accepts in one request body (its documented limit)."""
TRANSCRIBE_REQUEST_OVERHEAD = 4096
"""Bytes an ``input.transcribe`` body holds beyond its base64 audio (the JSON around it)."""
LOOPBACK_HOSTS = frozenset({"localhost"})
"""Host names taken as loopback besides the 127.0.0.0/8 and ::1 addresses."""


def is_loopback(host: str | None) -> bool:
    """``localhost``, 127.0.0.0/8 or ``::1``: the only hosts plain ``http`` may reach."""
    if not host:
        return False
    if host.lower() in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


OPENAI_API_HOST = "api.openai.com"
"""The one model host traces may be exported alongside (``AGENT_TRACING=openai``)."""

PROJECT_ROOT = Path(__file__).resolve().parents[3]
"""Repository root when running from a checkout (meaningless inside a Lambda layer)."""


class ClientToolSpec(BaseModel):
    """One tool the agent may call on the client (``CLIENT_TOOLS`` is a JSON list of these).

    ``parameters`` is the JSON Schema of the arguments, offered to the model as is; the client
    (ChatKit's ``onClientTool``) answers with a JSON object that continues the turn.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    description: str = Field(min_length=1, max_length=1024)
    parameters: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object", "properties": {}, "additionalProperties": False}
    )


class ModelOption(BaseModel):
    """One entry of the composer's model picker (``MODEL_CHOICES`` is a JSON list of these)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=128, pattern=r"^\S+$")
    label: str = Field(min_length=1, max_length=100)
    default: bool = False


class Settings(BaseSettings):
    """Process configuration. Field ``foo_bar`` is read from ``FOO_BAR``; an empty variable counts
    as unset (the SAM template declares some empty so ``sam local invoke`` can set them)."""

    model_config = SettingsConfigDict(
        env_file=None,
        extra="ignore",
        frozen=True,
        env_ignore_empty=True,
        hide_input_in_errors=True,  # a bad value may be a secret: its text never reaches a log
    )

    # --- database -----------------------------------------------------------------------------
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL, e.g. postgresql+psycopg://user:pw@host:5432/db. "
        "Unset: the local server uses an embedded SQLite file; deployed functions use "
        "DATABASE_SECRET_ARN.",
    )
    database_secret_arn: str | None = Field(
        default=None,
        description="Secrets Manager secret in the RDS JSON shape "
        "(host, port, username, password, dbname).",
    )
    database_host: str | None = Field(
        default=None,
        description="Database host; wins over the secret's. Needed with an RDS-managed master "
        "secret (it holds only username and password).",
    )
    database_port: int | None = Field(
        default=None, ge=1, le=65535, description="Database port when the secret has none."
    )
    database_name: str | None = Field(
        default=None, description="Database name when the secret has none (else postgres)."
    )
    app_database_secret_arn: str | None = Field(
        default=None,
        description="Migration job only: the app role's secret (username chatkit_app); each "
        "deploy sets that role's password from it (the app functions use it as "
        "DATABASE_SECRET_ARN).",
    )
    database_sslmode: Literal["disable", "prefer", "require", "verify-ca", "verify-full"] | None = (
        Field(
            default=None,
            description="libpq sslmode of PostgreSQL connections (deployed: require; "
            "verify-full with DATABASE_SSLROOTCERT). Unset: the driver's default.",
        )
    )
    database_sslrootcert: str | None = Field(
        default=None,
        description="CA bundle file for verify-ca / verify-full (e.g. the RDS global bundle).",
    )
    db_pool_size: int = Field(default=2, ge=1, description="Connections kept per process.")
    db_max_overflow: int = Field(default=8, ge=0, description="Extra connections under burst.")
    db_null_pool: bool = Field(
        default=False, description="Open a connection per use (set behind RDS Proxy)."
    )
    db_pooler: bool = Field(
        default=False,
        description="Disable server-side prepared statements (RDS Proxy, PgBouncer).",
    )
    db_ping_after_idle_seconds: float = Field(
        default=10.0,
        ge=0,
        description="Check a pooled PostgreSQL connection (one round trip) before reuse only when "
        "it sat idle longer than this, or after a SnapStart restore; 0 checks every checkout.",
    )
    data_dir: Path = Field(
        default=PROJECT_ROOT / "data",
        description="Where the embedded SQLite database and local attachment files live.",
    )

    # --- auth ---------------------------------------------------------------------------------
    jwt_secret: SecretStr | None = Field(default=None, description="HS256 shared secret.")
    jwt_secret_arn: str | None = Field(
        default=None, description="Secrets Manager secret holding the HS256 secret (deployed)."
    )
    jwt_jwks_url: str | None = Field(
        default=None,
        description="JWKS URL for RS256/ES256 keys: https (plain http to loopback in the local "
        "stage only); outside it JWT_ISSUER and JWT_AUDIENCE are required.",
    )
    jwt_issuer: str | None = Field(default=None, description="Required `iss` when set.")
    jwt_audience: str | None = Field(default=None, description="Required `aud` when set.")
    jwt_max_lifetime_seconds: int = Field(
        default=86_400,
        ge=60,
        description="Longest token lifetime accepted (`exp - iat`, or `exp - now` without `iat`).",
    )
    jwt_leeway_seconds: int = Field(default=30, ge=0, description="Clock skew allowed.")
    jwks_cache_seconds: int = Field(default=600, ge=0, description="JWKS cache lifetime.")
    dev_user_id: str = Field(
        default="dev-user",
        description="User of the local dev server when no JWT setting is present.",
    )

    # --- HTTP ---------------------------------------------------------------------------------
    cors_allow_origins: StringList = Field(
        default_factory=list,
        description="Origins the local server allows by CORS (deployed: the function URLs' "
        "AllowedOrigins). JSON list or comma list.",
    )
    max_request_bytes: int = Field(default=1_000_000, ge=1024, description="Largest body accepted.")
    max_message_chars: int = Field(
        default=20_000,
        ge=1,
        description="Longest user message: its text, its tags' data and its quoted text together.",
    )

    # --- fair use (docs/limits.md) ------------------------------------------------------------
    user_turns_per_minute: int = Field(
        default=20,
        ge=0,
        description="Turns a user may start per minute (a token bucket of that size, held in the "
        "database); 0: no limit.",
    )
    user_concurrent_turns: int = Field(
        default=2,
        ge=0,
        description="Turns of one user running at once (a lease per turn, expiring after twice "
        "AGENT_TURN_TIMEOUT_SECONDS); 0: no limit.",
    )
    user_tokens_per_day: int = Field(
        default=1_000_000,
        ge=0,
        description="Model tokens (input + output, as the model reports them) a user may use per "
        "UTC day; the turn that crosses it finishes, the next is refused. 0: no limit.",
    )
    history_max_chars: int = Field(
        default=200_000,
        ge=1,
        description="Most characters of thread history sent to the model per turn (oldest items "
        "dropped first, never the turn's own message).",
    )
    tool_output_max_chars: int = Field(
        default=20_000,
        ge=100,
        description="Longest tool result the model sees (todo and remote MCP tools); longer ones "
        "are cut, with a marker saying so.",
    )
    model_max_output_tokens: int | None = Field(
        default=4096,
        ge=1,
        description="Output token cap of each model call (max_tokens / max_output_tokens).",
    )
    safety_identifier_key: SecretStr | None = Field(
        default=None,
        description="Key of the per-user safety_identifier sent to the model (an HMAC of the user "
        "id). Unset: a key derived from the JWT secret, or a fixed local one.",
    )

    # --- model and agent ----------------------------------------------------------------------
    openai_api_key: SecretStr | None = Field(default=None, description="Enables the OpenAI model.")
    openai_api_key_secret_arn: str | None = Field(
        default=None, description="Secrets Manager secret holding the model API key."
    )
    openai_base_url: str | None = Field(
        default=None, description="Any OpenAI-compatible server (Chat Completions API)."
    )
    openai_api: Literal["auto", "responses", "chat_completions"] = Field(
        default="auto",
        description="Model API: auto is Chat Completions with OPENAI_BASE_URL, else Responses.",
    )
    model_name: str = Field(default="gpt-4.1-mini", description="Model used with a key.")
    model: Literal["offline"] | None = Field(
        default=None, description="`offline`: the built-in offline model, chosen explicitly."
    )
    model_required: bool = Field(
        default=False,
        description="Refuse to start without a model key, a base URL or MODEL=offline "
        "(the template sets it outside the dev stage).",
    )
    agent_max_turns: int = Field(default=8, ge=1, description="Model calls per user turn.")
    agent_turn_timeout_seconds: float = Field(
        default=120.0, gt=0, description="Wall clock limit of one user turn."
    )
    mcp_servers: Annotated[McpServers, NoDecode] = Field(
        default_factory=list,
        description="Remote MCP servers (streamable HTTP), a JSON list: a URL string, or "
        "`{url, allowed_tools, auth}` with auth none, header (Secrets Manager), "
        "client_credentials or token_exchange (docs/privacy.md). https only (loopback aside); "
        "the caller's token is never sent.",
    )
    mcp_allowed_tools: StringList = Field(
        default_factory=list,
        description="Tool names allowed from MCP_SERVERS entries that give no allowed_tools.",
    )
    agent_tracing: Literal["off", "openai"] = Field(
        default="off",
        description="`openai`: export Agents SDK traces (prompts and tool data) to OpenAI. "
        "Refused with an OPENAI_BASE_URL of another provider.",
    )
    openai_store: bool = Field(
        default=False,
        description="Let the provider store Responses API requests (`store: true`).",
    )

    transcribe_model: str = Field(
        default="gpt-4o-mini-transcribe",
        description="Model of dictation (`input.transcribe`), on the provider's "
        "/audio/transcriptions route.",
    )
    max_audio_bytes: int = Field(
        default=4_000_000,
        ge=1024,
        description="Largest dictated audio accepted; its base64 body must fit a function URL "
        "request (checked at start).",
    )
    reasoning_summary: Literal["off", "auto", "concise", "detailed"] = Field(
        default="off",
        description="Ask reasoning models (Responses API) for reasoning summaries, shown as "
        "ChatKit's reasoning workflow; other models refuse the parameter.",
    )
    model_choices: list[ModelOption] = Field(
        default_factory=list,
        description="The composer's model picker, a JSON list of `{id, label, default}`; a turn "
        "may use only these. Unset: MODEL_NAME alone (docs/composer.md).",
    )
    title_model: str | None = Field(
        default=None,
        description="Model writing a thread's title after its first answer (docs/composer.md); "
        "unset: the turn's model; `off`: the first message, cut (the offline model's rule).",
    )
    title_timeout_seconds: float = Field(
        default=5.0,
        gt=0,
        description="How long a turn's stream waits for its generated title after the answer "
        "(then the first message, cut, stays).",
    )

    # --- data lifecycle -----------------------------------------------------------------------
    retention_days: int | None = Field(
        default=None,
        ge=1,
        description="Delete conversations not updated for this many days (the scheduled "
        "retention function); unset keeps them.",
    )
    client_tools: list[ClientToolSpec] = Field(
        default_factory=list,
        description="Tools run by the client (JSON list of `{name, description, parameters}`); "
        "see docs/widgets.md.",
    )

    # --- attachments --------------------------------------------------------------------------
    attachments_bucket: str | None = Field(
        default=None,
        description="S3 bucket holding attachment bytes (uploaded by presigned PUT). Unset: "
        "files under DATA_DIR/attachments, uploaded through the local server's signed route.",
    )
    max_attachment_bytes: int = Field(
        default=10 * 1024 * 1024, ge=1, description="Largest attachment accepted, in bytes."
    )
    attachment_types: StringList = Field(
        default_factory=lambda: list(DEFAULT_ATTACHMENT_TYPES),
        description="MIME types an attachment may have. JSON list or comma list.",
    )
    attachment_upload_seconds: int = Field(
        default=300, ge=10, le=3600, description="Lifetime of an upload URL."
    )
    attachment_preview_seconds: int = Field(
        default=3600, ge=10, le=7 * 24 * 3600, description="Lifetime of a preview URL."
    )
    attachment_model_bytes: int = Field(
        default=16 * 1024 * 1024,
        ge=1,
        description="Most attachment bytes sent to the model in one request; a message whose "
        "attachments exceed it is refused (413).",
    )
    attachment_model_messages: int = Field(
        default=3,
        ge=1,
        description="User messages, newest first, whose attachments the model gets as bytes "
        "(older ones are described by name).",
    )

    # --- runtime ------------------------------------------------------------------------------
    stage: str = Field(default="local", description="Deployment stage name (local, dev, ...).")

    @field_validator("cors_allow_origins", "mcp_allowed_tools", "attachment_types", mode="before")
    @classmethod
    def _split_list(cls, value: object) -> object:
        """``["a", "b"]`` (JSON) or ``a,b``: the template passes CloudFormation's comma lists."""
        if isinstance(value, str):
            if value.strip().startswith("["):
                return json.loads(value)
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("mcp_servers", mode="before")
    @classmethod
    def _server_entries(cls, value: object) -> object:
        """A JSON list (or a comma list of URLs) of server entries, a URL string entry being
        ``{"url": ...}``, each validated as a ``RemoteMcpServer``."""
        value = cls._split_list(value)
        if not isinstance(value, list) or not value:
            return value
        from .remote_mcp import SERVER_ENTRIES, parse_server_entry

        return SERVER_ENTRIES.validate_python([parse_server_entry(entry) for entry in value])

    @property
    def transcribe_request_bytes(self) -> int:
        """The body an ``input.transcribe`` of ``MAX_AUDIO_BYTES`` needs: base64 grows by a
        third. The one request type allowed past ``MAX_REQUEST_BYTES``."""
        return 4 * -(-self.max_audio_bytes // 3) + TRANSCRIBE_REQUEST_OVERHEAD

    @model_validator(mode="after")
    def _audio_fits_a_function_url(self) -> Settings:
        if self.transcribe_request_bytes > FUNCTION_URL_REQUEST_BYTES:
            raise ValueError(
                "MAX_AUDIO_BYTES: its base64 request would exceed the function URL's request "
                f"limit ({FUNCTION_URL_REQUEST_BYTES} bytes)"
            )
        return self

    @model_validator(mode="after")
    def _one_default_model(self) -> Settings:
        if sum(option.default for option in self.model_choices) > 1:
            raise ValueError("MODEL_CHOICES: at most one entry may be the default")
        if len({option.id for option in self.model_choices}) < len(self.model_choices):
            raise ValueError("MODEL_CHOICES: the ids must be unique")
        return self

    @property
    def models_offered(self) -> list[ModelOption]:
        """``MODEL_CHOICES`` with exactly one default (the first, if none says so); unset:
        ``MODEL_NAME`` alone."""
        choices = self.model_choices or [ModelOption(id=self.model_name, label=self.model_name)]
        if any(option.default for option in choices):
            return list(choices)
        return [choices[0].model_copy(update={"default": True}), *choices[1:]]

    @model_validator(mode="after")
    def _tracing_only_to_openai(self) -> Settings:
        """Traces go to OpenAI's ingestion with the configured key: with another provider's
        base URL, that would send this provider's key and the content to OpenAI."""
        if self.agent_tracing == "openai" and self.openai_base_url is not None:
            host = urlsplit(self.openai_base_url).hostname or ""
            if host != OPENAI_API_HOST:
                raise ValueError(
                    "AGENT_TRACING=openai exports traces to OpenAI: refused with OPENAI_BASE_URL "
                    f"pointing at another provider ({host})"
                )
        return self

    @model_validator(mode="after")
    def _model_configured_when_required(self) -> Settings:
        """A deployed chat function must not answer with the offline model by accident."""
        configured = any(
            value is not None
            for value in (self.openai_api_key, self.openai_api_key_secret_arn, self.openai_base_url)
        )
        if self.model_required and not configured and self.model != "offline":
            raise ValueError(
                "no model configured: set OPENAI_API_KEY_SECRET_ARN (ModelApiKeySecretArn) or "
                "OPENAI_BASE_URL, or MODEL=offline (ModelName=offline) to serve the offline model"
            )
        return self

    @model_validator(mode="after")
    def _strict_tokens_when_deployed(self) -> Settings:
        """A deployed stage verifies who issued a token and for whom (a JWKS provider signs
        tokens for many apps), and fetches its keys over https only."""
        if self.jwt_jwks_url is None:
            return self
        parts = urlsplit(self.jwt_jwks_url)
        local_http = (
            parts.scheme == "http" and self.stage == "local" and is_loopback(parts.hostname)
        )
        if parts.scheme != "https" and not local_http:
            raise ValueError(
                "JWT_JWKS_URL must be https (plain http only to a loopback host in the local stage)"
            )
        if self.stage != "local":
            missing = [
                name
                for name, value in (
                    ("JWT_ISSUER", self.jwt_issuer),
                    ("JWT_AUDIENCE", self.jwt_audience),
                )
                if not value
            ]
            if missing:
                needed = " and ".join(missing)
                raise ValueError(
                    f"stage {self.stage!r} verifies JWKS tokens strictly: set {needed}"
                )
        return self

    @property
    def auth_configured(self) -> bool:
        return any(v is not None for v in (self.jwt_secret, self.jwt_secret_arn, self.jwt_jwks_url))

    @property
    def sqlite_url(self) -> str:
        return f"sqlite+aiosqlite:///{self.data_dir / 'chat.db'}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (cached: Lambda reads the environment once per sandbox)."""
    return Settings()
