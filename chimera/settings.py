"""The one settings object.

Read once at process start (``get_settings()``) and passed down.  The seed
service's variable names are honoured as they are (``REDIS_HOST``,
``DATABASE_URL``, ``ANTHROPIC_API_KEY``, ...); everything else is prefixed
``CHIMERA_``.  A malformed value fails with a ``ConfigError`` that names the
variable and says what was expected.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from chimera import defaults as d
from chimera.errors import ConfigError
from chimera.models.analysis import AnalysisKind
from chimera.models.participants import Participant, Provider


def _env(default: Any, *names: str, **kwargs: Any) -> Any:
    """A field read from the seed service's (unprefixed) variable ``names``."""
    return Field(default, validation_alias=AliasChoices(*names), **kwargs)


class ModelLimits(BaseModel):
    """Per-minute limits of one provider or model; None means unlimited."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rpm: int | None = Field(default=None, gt=0, description="requests per minute")
    itpm: int | None = Field(default=None, gt=0, description="input tokens per minute")
    otpm: int | None = Field(default=None, gt=0, description="output tokens per minute")


PositiveInt = Annotated[int, Field(gt=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
Port = Annotated[int, Field(ge=1, le=65_535)]
RedisDb = Annotated[int, Field(ge=0, le=15)]
ModelName = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^\S+$")]


class Settings(BaseSettings):
    """Every knob Chimera has.  See the README's configuration table."""

    model_config = SettingsConfigDict(
        env_prefix="CHIMERA_",
        extra="ignore",
        frozen=True,
        validate_by_name=True,
        validate_by_alias=True,
        hide_input_in_errors=True,  # values may be secrets
    )

    def __repr_args__(self) -> Any:
        # A plain URL (a provider's base URL, the OTLP endpoint) may carry credentials.
        for name, value in super().__repr_args__():
            yield name, redact_url(value) if isinstance(value, str) and "://" in value else value

    # --- Redis ----------------------------------------------------------------
    redis_host: str = _env(d.REDIS_HOST, "REDIS_HOST")
    redis_port: Port = _env(d.REDIS_PORT, "REDIS_PORT")
    redis_password: SecretStr | None = _env(None, "REDIS_PASSWORD")
    # Overrides host/port/password; the db in its path is ignored (see *_db below).
    redis_url: SecretStr | None = _env(None, "REDIS_URL")
    redis_broker_db: RedisDb = d.REDIS_BROKER_DB
    redis_result_db: RedisDb = d.REDIS_RESULT_DB
    redis_state_db: RedisDb = d.REDIS_STATE_DB
    redis_key_prefix: str = Field(d.REDIS_KEY_PREFIX, min_length=1, max_length=64)
    redis_socket_timeout_s: PositiveFloat = d.REDIS_SOCKET_TIMEOUT_S
    redis_connect_timeout_s: PositiveFloat = d.REDIS_CONNECT_TIMEOUT_S
    redis_health_check_interval_s: PositiveInt = d.REDIS_HEALTH_CHECK_INTERVAL_S

    # --- Kafka ----------------------------------------------------------------
    kafka_bootstrap_servers: str = _env(d.KAFKA_BOOTSTRAP_SERVERS, "KAFKA_BOOTSTRAP_SERVERS")
    kafka_consumer_group_id: str = _env(
        d.KAFKA_CONSUMER_GROUP_ID, "KAFKA_CONSUMER_GROUP_ID", min_length=1
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = _env(
        "PLAINTEXT", "KAFKA_SECURITY_PROTOCOL"
    )
    kafka_ssl_cafile: Path | None = _env(None, "KAFKA_SSL_CAFILE")
    kafka_ssl_certfile: Path | None = _env(None, "KAFKA_SSL_CERTFILE")
    kafka_ssl_keyfile: Path | None = _env(None, "KAFKA_SSL_KEYFILE")
    kafka_sasl_mechanism: (
        Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"] | None
    ) = _env(None, "KAFKA_SASL_MECHANISM")
    kafka_sasl_username: str | None = _env(None, "KAFKA_SASL_USERNAME")
    kafka_sasl_password: SecretStr | None = _env(None, "KAFKA_SASL_PASSWORD")
    kafka_topic_partitions: Annotated[int, Field(ge=1, le=1_000)] = d.KAFKA_TOPIC_PARTITIONS
    kafka_replication_factor: Annotated[int, Field(ge=1, le=10)] = d.KAFKA_REPLICATION_FACTOR
    kafka_session_timeout_ms: PositiveInt = d.KAFKA_SESSION_TIMEOUT_MS
    kafka_heartbeat_interval_ms: PositiveInt = d.KAFKA_HEARTBEAT_INTERVAL_MS
    kafka_max_poll_records: PositiveInt = d.KAFKA_MAX_POLL_RECORDS
    kafka_request_timeout_ms: PositiveInt = d.KAFKA_REQUEST_TIMEOUT_MS
    # Producers wait for acks one event at a time: batching delay is pure latency.
    kafka_linger_ms: Annotated[int, Field(ge=0, le=1_000)] = 0

    topic_conversation_new: str = d.TOPIC_CONVERSATION_NEW
    topic_conversation_turn: str = d.TOPIC_CONVERSATION_TURN
    topic_conversation_response: str = d.TOPIC_CONVERSATION_RESPONSE
    topic_conversation_completed: str = d.TOPIC_CONVERSATION_COMPLETED
    topic_conversation_dlq: str = d.TOPIC_CONVERSATION_DLQ
    topic_analysis_tasks: str = d.TOPIC_ANALYSIS_TASKS
    topic_analysis_completed: str = d.TOPIC_ANALYSIS_COMPLETED
    topic_analysis_dlq: str = d.TOPIC_ANALYSIS_DLQ

    # --- Postgres -------------------------------------------------------------
    database_url: SecretStr = _env(SecretStr(d.DATABASE_URL), "DATABASE_URL")
    db_pool_size: PositiveInt = d.DB_POOL_SIZE
    db_max_overflow: Annotated[int, Field(ge=0)] = d.DB_MAX_OVERFLOW
    db_pool_timeout_s: PositiveFloat = d.DB_POOL_TIMEOUT_S

    # --- LLM providers --------------------------------------------------------
    anthropic_api_key: SecretStr | None = _env(None, "ANTHROPIC_API_KEY")
    google_api_key: SecretStr | None = _env(None, "GOOGLE_API_KEY", "GEMINI_API_KEY")
    openai_api_key: SecretStr | None = _env(None, "OPENAI_API_KEY")
    anthropic_base_url: str | None = _env(None, "ANTHROPIC_BASE_URL")
    google_gemini_base_url: str | None = _env(None, "GOOGLE_GEMINI_BASE_URL")
    openai_base_url: str | None = _env(None, "OPENAI_BASE_URL")
    rate_limit_requests_per_minute: PositiveInt = _env(
        d.RATE_LIMIT_REQUESTS_PER_MINUTE, "RATE_LIMIT_REQUESTS_PER_MINUTE"
    )
    # JSON: {"anthropic": {"rpm": 50}, "anthropic/claude-sonnet-5-5": {"itpm": 30000}}
    # A model's entry overrides its provider's, field by field.
    llm_limits: dict[str, ModelLimits] = Field(default_factory=dict)
    #: The models events may name, per provider; a provider left out allows the models
    #: the price table lists for it (and those the settings themselves name).
    llm_models: dict[Provider, list[ModelName]] = Field(default_factory=dict)
    #: Whose window RATE_LIMIT_REQUESTS_PER_MINUTE and CHIMERA_LLM_LIMITS' provider
    #: entries count: the provider's (one budget however many model names) or each model's.
    llm_limit_scope: Literal["provider", "model"] = "provider"
    llm_timeout_s: PositiveFloat = d.LLM_TIMEOUT_S
    llm_connect_timeout_s: PositiveFloat = d.LLM_CONNECT_TIMEOUT_S
    llm_sdk_max_retries: Annotated[int, Field(ge=0, le=1)] = 0
    llm_max_wait_s: Annotated[float, Field(ge=0)] = d.LLM_MAX_WAIT_S
    llm_window_margin_s: Annotated[float, Field(ge=0, le=30)] = d.LLM_WINDOW_MARGIN_S
    # Limits are per minute; only tests shorten the window (and scale the limits).
    llm_limit_window_s: Annotated[float, Field(gt=0, le=3_600)] = 60.0
    breaker_failure_threshold: PositiveInt = d.BREAKER_FAILURE_THRESHOLD
    breaker_cooldown_s: PositiveFloat = d.BREAKER_COOLDOWN_S
    price_table_path: Path | None = None
    # llm_calls rows are written in batches this often (0: one write per call, inline).
    accounting_flush_ms: Annotated[float, Field(ge=0, le=10_000)] = 50.0

    # --- Conversations --------------------------------------------------------
    min_conversation_turns: Annotated[int, Field(ge=1, le=1_000)] = d.MIN_CONVERSATION_TURNS
    # The default max_turns of a request, and the most a request may ask for.
    max_conversation_turns: Annotated[int, Field(ge=1, le=1_000)] = _env(
        d.MAX_CONVERSATION_TURNS, "MAX_CONVERSATION_TURNS"
    )
    conversation_timeout_seconds: PositiveInt = _env(
        d.CONVERSATION_TIMEOUT_SECONDS, "CONVERSATION_TIMEOUT_SECONDS"
    )
    max_participants: Annotated[int, Field(ge=2, le=64)] = d.MAX_PARTICIPANTS
    conversation_lock_ttl_s: Annotated[float, Field(ge=1, le=600)] = d.CONVERSATION_LOCK_TTL_S
    turn_max_output_tokens: Annotated[int, Field(ge=16, le=32_000)] = d.TURN_MAX_OUTPUT_TOKENS
    # Retries of a turn whose LLM failure is retryable, before the conversation fails.
    turn_max_retries: Annotated[int, Field(ge=0, le=100)] = d.TURN_MAX_RETRIES
    # The Redis list the data-ingestion service fills (not under our key prefix).
    topics_queue_key: str = Field(d.KEY_TOPICS_QUEUE, min_length=1)
    # The topic queue starts conversations only while fewer than this many run,
    # and at most this many per drain.
    topics_capacity: Annotated[int, Field(ge=1)] = d.TOPICS_CAPACITY
    topics_batch: Annotated[int, Field(ge=1)] = d.TOPICS_BATCH
    topics_drain_interval_s: PositiveFloat = d.TOPICS_DRAIN_INTERVAL_S
    topics_max_item_bytes: Annotated[int, Field(ge=256)] = d.TOPICS_MAX_ITEM_BYTES
    topics_dead_max: PositiveInt = d.TOPICS_DEAD_MAX
    # An inbox event untouched this long is re-driven by the reconciler.
    reconcile_after_s: PositiveFloat = d.RECONCILE_AFTER_S
    reconcile_interval_s: PositiveFloat = d.RECONCILE_INTERVAL_S
    reconcile_max_attempts: Annotated[int, Field(ge=1)] = d.RECONCILE_MAX_ATTEMPTS
    default_participants: list[Participant] = Field(
        default_factory=lambda: [Participant.model_validate(p) for p in d.DEFAULT_PARTICIPANTS],
        min_length=2,
    )

    # --- Input limits ---------------------------------------------------------
    max_event_bytes: Annotated[int, Field(ge=1_024)] = d.MAX_EVENT_BYTES
    #: How much attacker-chosen text a log line, an error or a dead-letter header quotes.
    max_quoted_chars: Annotated[int, Field(ge=32, le=100_000)] = d.MAX_QUOTED_CHARS
    max_log_message_chars: Annotated[int, Field(ge=256, le=10_000_000)] = d.MAX_LOG_MESSAGE_CHARS
    max_output_metadata_bytes: Annotated[int, Field(ge=256, le=524_288)] = (
        d.MAX_OUTPUT_METADATA_BYTES
    )

    # --- Bridge ---------------------------------------------------------------
    bridge_queue_high_water: PositiveInt = d.BRIDGE_QUEUE_HIGH_WATER
    bridge_queue_low_water: Annotated[int, Field(ge=0)] = d.BRIDGE_QUEUE_LOW_WATER
    bridge_retry_base_s: PositiveFloat = d.BRIDGE_RETRY_BASE_S
    bridge_retry_cap_s: PositiveFloat = d.BRIDGE_RETRY_CAP_S

    # --- Celery ---------------------------------------------------------------
    celery_queue: str = Field(d.CELERY_QUEUE, min_length=1)
    celery_pool: Literal["threads", "prefork", "gevent", "solo"] = d.CELERY_POOL
    celery_concurrency: Annotated[int, Field(ge=1, le=1_024)] = d.CELERY_CONCURRENCY
    celery_task_events: bool = False
    task_soft_time_limit_s: PositiveInt = d.TASK_SOFT_TIME_LIMIT_S
    task_time_limit_s: PositiveInt = d.TASK_TIME_LIMIT_S
    visibility_timeout_s: PositiveInt = d.VISIBILITY_TIMEOUT_S
    unacked_restore_interval_s: PositiveInt = d.UNACKED_RESTORE_INTERVAL_S
    unacked_mutex_expire_s: PositiveInt = d.UNACKED_MUTEX_EXPIRE_S
    result_expires_s: PositiveInt = d.RESULT_EXPIRES_S
    worker_soft_shutdown_timeout_s: Annotated[float, Field(ge=0)] = d.WORKER_SOFT_SHUTDOWN_TIMEOUT_S
    heartbeat_interval_s: PositiveFloat = d.HEARTBEAT_INTERVAL_S

    # --- Analysis -------------------------------------------------------------
    analysis_provider: Literal["anthropic", "google", "openai"] = d.ANALYSIS_PROVIDER
    analysis_model: str = Field(d.ANALYSIS_MODEL, min_length=1)
    # Per-kind overrides, e.g. {"logic_bias": {"provider": "google", "model": "gemini-3.5-pro"}}.
    analysis_models: dict[AnalysisKind, Participant] = Field(default_factory=dict)
    analysis_max_output_tokens: Annotated[int, Field(ge=64, le=64_000)] = (
        d.ANALYSIS_MAX_OUTPUT_TOKENS
    )
    analysis_input_token_budget: Annotated[int, Field(ge=256, le=2_000_000)] = (
        d.ANALYSIS_INPUT_TOKEN_BUDGET
    )
    analysis_max_retries: Annotated[int, Field(ge=0, le=100)] = d.ANALYSIS_MAX_RETRIES
    # Completed conversations are analysed too (an analysis event per conversation).
    analyze_completed_conversations: bool = False
    # How /orchestrator/analyze fans out: a thread pool, or Ray (local, or RAY_ADDRESS).
    analyze_executor: Literal["threads", "ray"] = "threads"
    ray_address: str | None = _env(None, "RAY_ADDRESS")
    #: Ray's token authentication, required when RAY_ADDRESS names a remote cluster.
    ray_auth_token: SecretStr | None = _env(None, "RAY_AUTH_TOKEN")
    analyze_timeout_s: PositiveFloat = d.ANALYZE_TIMEOUT_S

    # --- HTTP -----------------------------------------------------------------
    http_host: str = d.HTTP_HOST
    http_port: Port = d.HTTP_PORT
    http_workers: Annotated[int, Field(ge=1, le=64)] = d.HTTP_WORKERS
    http_threads: Annotated[int, Field(ge=1, le=256)] = d.HTTP_THREADS
    http_max_body_bytes: Annotated[int, Field(ge=1_024)] = d.HTTP_MAX_BODY_BYTES
    api_token: SecretStr | None = None
    #: Without CHIMERA_API_TOKEN the app serves loopback only, unless this is true.
    allow_anonymous: bool = False
    #: A token for /metrics and /readyz's details alone (a scraper's); the API token works too.
    metrics_token: SecretStr | None = None
    readyz_cache_s: Annotated[float, Field(ge=0, le=300)] = d.READYZ_CACHE_S
    #: Host headers accepted besides loopback names (DNS-rebinding guard); ["*"] accepts any.
    http_allowed_hosts: list[str] = Field(default_factory=list)

    # --- Flower ---------------------------------------------------------------
    flower_host: str = d.FLOWER_HOST
    flower_port: Port = d.FLOWER_PORT
    # "user:password" (Flower's --basic-auth); unset: no authentication (local only).
    flower_basic_auth: SecretStr | None = None

    # --- Dead-letter replay ----------------------------------------------------
    dlq_max_replays: Annotated[int, Field(ge=0, le=1_000)] = d.DLQ_MAX_REPLAYS
    #: Dead-letter topic -> the input topic its records are replayed to; empty: each
    #: input topic's own (conversation.dlq -> conversation.new, analysis.dlq -> analysis.tasks).
    dlq_routes: dict[str, str] = Field(default_factory=dict)

    # --- Observability --------------------------------------------------------
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = "text"
    otel_exporter_otlp_endpoint: str | None = _env(None, "OTEL_EXPORTER_OTLP_ENDPOINT")
    otel_service_name: str = _env("chimera", "OTEL_SERVICE_NAME")

    # --- Local stack ----------------------------------------------------------
    state_dir: Path = Path(d.STATE_DIR)
    # The LLM simulator the local stack runs when no provider is configured.
    sim_host: str = d.SIM_HOST
    sim_port: Port = d.SIM_PORT
    sim_ttft_ms: Annotated[float, Field(ge=0)] = d.SIM_TTFT_MS
    sim_ms_per_token: Annotated[float, Field(ge=0)] = d.SIM_MS_PER_TOKEN
    stack_ready_timeout_s: PositiveFloat = d.STACK_READY_TIMEOUT_S

    # --- Validators -----------------------------------------------------------

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, v: SecretStr | None) -> SecretStr | None:
        if v is None or not v.get_secret_value():
            return None
        parts = urlsplit(v.get_secret_value())
        if parts.scheme not in ("redis", "rediss") or not parts.hostname:
            raise ValueError(
                "expected redis://[:password@]host[:port] or rediss://... "
                "(leave REDIS_URL unset to use REDIS_HOST/REDIS_PORT)"
            )
        try:
            parts.port  # noqa: B018 - raises on a non-numeric port
        except ValueError as exc:
            raise ValueError("the port in REDIS_URL is not a number") from exc
        return v

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, v: SecretStr) -> SecretStr:
        return SecretStr(normalize_database_url(v.get_secret_value()))

    @field_validator("kafka_bootstrap_servers")
    @classmethod
    def _check_bootstrap(cls, v: str) -> str:
        servers = [s.strip() for s in v.split(",") if s.strip()]
        if not servers:
            raise ValueError("expected host:port[,host:port...]")
        for server in servers:
            host, sep, port = server.rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65_536:
                raise ValueError(f"{server!r} is not host:port (e.g. 127.0.0.1:9092)")
        return ",".join(servers)

    @field_validator("anthropic_base_url", "google_gemini_base_url", "openai_base_url")
    @classmethod
    def _check_base_url(cls, v: str | None) -> str | None:
        if not v:
            return None
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("expected an http(s):// URL such as http://127.0.0.1:8089")
        return v.rstrip("/")

    @field_validator("kafka_ssl_cafile", "kafka_ssl_certfile", "kafka_ssl_keyfile")
    @classmethod
    def _check_file(cls, v: Path | None) -> Path | None:
        if v is not None and not v.is_file():
            raise ValueError(f"no such file: {v}")
        return v

    @model_validator(mode="after")
    def _check_relations(self) -> Settings:
        problems: dict[str, str] = {}
        if self.min_conversation_turns > self.max_conversation_turns:
            problems["min_conversation_turns"] = (
                f"must be <= MAX_CONVERSATION_TURNS ({self.max_conversation_turns})"
            )
        if self.task_soft_time_limit_s >= self.task_time_limit_s:
            problems["task_soft_time_limit_s"] = (
                f"must be below CHIMERA_TASK_TIME_LIMIT_S ({self.task_time_limit_s})"
            )
        if self.task_time_limit_s * 2 > self.visibility_timeout_s:
            problems["task_time_limit_s"] = (
                "must be at most half of CHIMERA_VISIBILITY_TIMEOUT_S "
                f"({self.visibility_timeout_s}) or a slow task runs twice"
            )
        if self.bridge_queue_low_water >= self.bridge_queue_high_water:
            problems["bridge_queue_low_water"] = (
                f"must be below CHIMERA_BRIDGE_QUEUE_HIGH_WATER ({self.bridge_queue_high_water})"
            )
        if self.kafka_heartbeat_interval_ms * 3 > self.kafka_session_timeout_ms:
            problems["kafka_heartbeat_interval_ms"] = (
                "must be at most a third of CHIMERA_KAFKA_SESSION_TIMEOUT_MS"
            )
        problems |= self._kafka_security_problems()
        problems |= self._placeholder_problems()
        problems |= self._dlq_route_problems()
        if len(self.default_participants) > self.max_participants:
            problems["default_participants"] = (
                f"at most CHIMERA_MAX_PARTICIPANTS ({self.max_participants})"
            )
        if problems:
            raise ConfigError(_format(problems))
        return self

    def _placeholder_problems(self) -> dict[str, str]:
        """Secrets still holding a placeholder of .env.example (``change-me...``)."""
        problems: dict[str, str] = {}
        for field in Settings.model_fields:
            value = getattr(self, field)
            if not isinstance(value, SecretStr):
                continue
            secret = value.get_secret_value()
            if "://" in secret:  # a URL: its password is the secret
                secret = urlsplit(secret).password or ""
            if secret.lower().startswith(d.PLACEHOLDER_SECRET_PREFIX):
                problems[field] = (
                    f"still the placeholder {d.PLACEHOLDER_SECRET_PREFIX}...: set a real secret "
                    "(e.g. `openssl rand -hex 32`) or leave it unset"
                )
        return problems

    def _dlq_route_problems(self) -> dict[str, str]:
        inputs = {self.topic_conversation_new, self.topic_analysis_tasks}
        others = set(self.topics.values()) - {
            self.topic_conversation_dlq,
            self.topic_analysis_dlq,
        }
        for dlq, target in self.dlq_routes.items():
            if target not in inputs:
                return {
                    "dlq_routes": f"{dlq} -> {target}: dead letters are replayed only to an "
                    f"input topic ({', '.join(sorted(inputs))})"
                }
            if dlq in others:
                return {"dlq_routes": f"{dlq} is an input or output topic, not a dead-letter topic"}
        return {}

    def _kafka_security_problems(self) -> dict[str, str]:
        """What KAFKA_SECURITY_PROTOCOL needs and the other KAFKA_SSL_/SASL_ variables lack."""
        protocol = self.kafka_security_protocol
        problems: dict[str, str] = {}
        if protocol.startswith("SASL"):
            if self.kafka_sasl_mechanism is None:
                problems["kafka_sasl_mechanism"] = (
                    f"{protocol} needs KAFKA_SASL_MECHANISM (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)"
                )
            elif self.kafka_sasl_mechanism == "OAUTHBEARER":
                problems["kafka_sasl_mechanism"] = (
                    "OAUTHBEARER needs a token provider, which Chimera does not configure: "
                    "use PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"
                )
            if not self.kafka_sasl_username:
                problems["kafka_sasl_username"] = f"{protocol} needs KAFKA_SASL_USERNAME"
            if self.kafka_sasl_password is None or not self.kafka_sasl_password.get_secret_value():
                problems["kafka_sasl_password"] = f"{protocol} needs KAFKA_SASL_PASSWORD"
        ssl_files = [
            env_var_for(f"kafka_ssl_{name}")
            for name in ("cafile", "certfile", "keyfile")
            if getattr(self, f"kafka_ssl_{name}") is not None
        ]
        if ssl_files and protocol not in ("SSL", "SASL_SSL"):
            problems["kafka_security_protocol"] = (
                f"{', '.join(ssl_files)} set, but {protocol} does not use TLS: "
                "set KAFKA_SECURITY_PROTOCOL=SSL (or SASL_SSL)"
            )
        if self.kafka_ssl_keyfile is not None and self.kafka_ssl_certfile is None:
            problems["kafka_ssl_keyfile"] = (
                "a client key without its certificate: set KAFKA_SSL_CERTFILE too"
            )
        return problems

    # --- Derived values -------------------------------------------------------

    def redis_url_for(self, db: int) -> str:
        """The Redis URL (with credentials) for one logical database."""
        if self.redis_url is not None:
            parts = urlsplit(self.redis_url.get_secret_value())
            return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, ""))
        auth = ""
        if self.redis_password is not None:
            auth = f":{quote(self.redis_password.get_secret_value(), safe='')}@"
        return f"redis://{auth}{self.redis_host}:{self.redis_port}/{db}"

    @property
    def celery_broker_url(self) -> str:
        return self.redis_url_for(self.redis_broker_db)

    @property
    def celery_result_url(self) -> str:
        return self.redis_url_for(self.redis_result_db)

    @property
    def state_redis_url(self) -> str:
        return self.redis_url_for(self.redis_state_db)

    @property
    def bootstrap_servers(self) -> list[str]:
        return self.kafka_bootstrap_servers.split(",")

    @property
    def topics(self) -> dict[str, str]:
        """Every topic name, keyed by its role (the default name)."""
        return {
            d.TOPIC_CONVERSATION_NEW: self.topic_conversation_new,
            d.TOPIC_CONVERSATION_TURN: self.topic_conversation_turn,
            d.TOPIC_CONVERSATION_RESPONSE: self.topic_conversation_response,
            d.TOPIC_CONVERSATION_COMPLETED: self.topic_conversation_completed,
            d.TOPIC_CONVERSATION_DLQ: self.topic_conversation_dlq,
            d.TOPIC_ANALYSIS_TASKS: self.topic_analysis_tasks,
            d.TOPIC_ANALYSIS_COMPLETED: self.topic_analysis_completed,
            d.TOPIC_ANALYSIS_DLQ: self.topic_analysis_dlq,
        }

    @property
    def replay_routes(self) -> dict[str, str]:
        """Dead-letter topic -> the one input topic its records may be replayed to."""
        return {
            self.topic_conversation_dlq: self.topic_conversation_new,
            self.topic_analysis_dlq: self.topic_analysis_tasks,
        } | dict(self.dlq_routes)

    def redis_key(self, *parts: str) -> str:
        """A key in our own namespace: ``<prefix><part>:<part>...``."""
        return self.redis_key_prefix + ":".join(parts)

    @property
    def configured_providers(self) -> list[str]:
        """Providers with a key or a base URL; the others are not used."""
        names = ("anthropic", "google", "openai")
        return [name for name in names if any(self.provider_settings(name))]

    def limits_for(self, provider: str, model: str) -> ModelLimits:
        """The limits of ``provider/model``: its own entry over its provider's over
        RATE_LIMIT_REQUESTS_PER_MINUTE."""
        merged: dict[str, int | None] = {"rpm": self.rate_limit_requests_per_minute}
        for key in (provider, f"{provider}/{model}"):
            if key in self.llm_limits:
                merged |= self.llm_limits[key].model_dump(exclude_unset=True)
        return ModelLimits(**merged)

    def provider_settings(self, provider: str) -> tuple[str | None, str | None]:
        """(api key, base URL) of a provider."""
        key, url = {
            "anthropic": (self.anthropic_api_key, self.anthropic_base_url),
            "google": (self.google_api_key, self.google_gemini_base_url),
            "openai": (self.openai_api_key, self.openai_base_url),
        }[provider]
        return (key.get_secret_value() if key else None), url

    @property
    def run_dir(self) -> Path:
        return self.state_dir / "run"

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"


def normalize_database_url(raw: str) -> str:
    """Check a Postgres URL and pin the psycopg2 driver, or raise ValueError."""
    try:
        url = make_url(raw)
    except ArgumentError as exc:
        raise ValueError("expected postgresql://user[:password]@host[:port]/dbname") from exc
    if url.get_backend_name() not in ("postgresql", "postgres"):
        raise ValueError("only PostgreSQL is supported: postgresql://user@host:port/dbname")
    if not url.database:
        raise ValueError("the URL names no database: add /dbname at the end")
    url = url.set(drivername="postgresql+psycopg2")
    return url.render_as_string(hide_password=False)


def env_var_for(field: str) -> str:
    """The environment variable that sets ``field`` (its first name if several)."""
    info = Settings.model_fields.get(field)
    if info is not None and isinstance(info.validation_alias, AliasChoices):
        first = info.validation_alias.choices[0]
        if isinstance(first, str):
            return first
    return f"CHIMERA_{field.upper()}"


def _format(problems: Mapping[str, str]) -> str:
    lines = [f"  {env_var_for(f)}: {msg}" for f, msg in problems.items()]
    return "invalid configuration:\n" + "\n".join(lines)


def load_settings(**overrides: Any) -> Settings:
    """Read settings from the environment (and ``overrides``), or raise ConfigError."""
    try:
        return Settings(**overrides)
    except SettingsError as exc:  # a complex value (list, dict) that is not JSON
        match = re.search(r'field "(\w+)"', str(exc))
        field = match.group(1) if match else "?"
        raise ConfigError(_format({field: "expected a JSON value"})) from None
    except ValidationError as exc:
        problems: dict[str, str] = {}
        for err in exc.errors(include_url=False):
            loc = [str(p) for p in err["loc"]]
            field = _field_from_loc(loc[0]) if loc else "?"
            where = ".".join(loc[1:])
            ctx = err.get("ctx") or {}
            msg = str(ctx["error"]) if "error" in ctx else err["msg"]
            problems[field] = f"{msg}{f' (at {where})' if where else ''}"
        raise ConfigError(_format(problems)) from None


def _field_from_loc(name: str) -> str:
    for field, info in Settings.model_fields.items():
        alias = info.validation_alias
        if name == field or (isinstance(alias, AliasChoices) and name in alias.choices):
            return field
    return name.removeprefix("CHIMERA_").lower()


@functools.cache
def get_settings() -> Settings:
    """The process's settings, read from the environment on first use."""
    return load_settings()


def to_env(settings: Settings) -> dict[str, str]:
    """Settings as environment variables (secrets included), for child processes."""
    out: dict[str, str] = {}
    for field in Settings.model_fields:
        value = getattr(settings, field)
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        elif isinstance(value, list | dict):
            value = json.dumps(_jsonable(value))
        out[env_var_for(field)] = str(value)
    return out


def describe(settings: Settings) -> dict[str, str]:
    """Settings as env-var -> value, secrets masked (for `stack status` and logs)."""
    out: dict[str, str] = {}
    for field in Settings.model_fields:
        value = getattr(settings, field)
        if isinstance(value, SecretStr):
            shown = redact_url(value.get_secret_value()) if "url" in field else "***"
        elif isinstance(value, list | dict):
            shown = json.dumps(_jsonable(value))
        elif isinstance(value, str) and "://" in value:  # a base URL may carry credentials
            shown = redact_url(value)
        else:
            shown = "" if value is None else str(value)
        out[env_var_for(field)] = shown
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_none=True)
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def redact_url(url: str) -> str:
    """``scheme://user:secret@host`` -> ``scheme://user:***@host``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
