"""The one settings object.

Read once at process start (``get_settings()``) and passed down.  The seed
service's variable names are honoured as they are (``REDIS_HOST``,
``DATABASE_URL``, ``ANTHROPIC_API_KEY``, ...); everything else is prefixed
``CHIMERA_``.  A malformed value fails with a ``ConfigError`` that names the
variable and says what was expected.

The fields that reach Redis, Kafka and Postgres (and the model's configuration)
are inherited from ``settings_services``; the value types and their checks live
in ``settings_values``, the checks across fields in ``settings_checks``, and the
variable names, error messages and ``to_env``/``describe`` in ``settings_env``.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import SettingsError

from chimera import defaults as d
from chimera import settings_checks
from chimera.errors import ConfigError
from chimera.models.analysis import AnalysisKind
from chimera.models.participants import Participant, Provider
from chimera.settings_env import config_error, env_field, env_name, format_problems, to_env
from chimera.settings_services import ServiceSettings
from chimera.settings_values import (
    BaseUrl,
    ModelLimits,
    ModelName,
    Port,
    PositiveFloat,
    PositiveInt,
    normalize_database_url,
)

# Imported from here by many modules and tests; their homes are settings_env / settings_values.
__all__ = [
    "Settings",
    "env_var_for",
    "get_settings",
    "load_settings",
    "normalize_database_url",
    "to_env",
]


class Settings(ServiceSettings):
    """Every knob Chimera has (those of Redis, Kafka and Postgres in ServiceSettings).

    See the README's configuration table.
    """

    # --- LLM providers --------------------------------------------------------
    anthropic_api_key: SecretStr | None = env_field(None, "ANTHROPIC_API_KEY")
    google_api_key: SecretStr | None = env_field(None, "GOOGLE_API_KEY", "GEMINI_API_KEY")
    openai_api_key: SecretStr | None = env_field(None, "OPENAI_API_KEY")
    anthropic_base_url: BaseUrl = env_field(None, "ANTHROPIC_BASE_URL")
    google_gemini_base_url: BaseUrl = env_field(None, "GOOGLE_GEMINI_BASE_URL")
    openai_base_url: BaseUrl = env_field(None, "OPENAI_BASE_URL")
    rate_limit_requests_per_minute: PositiveInt = env_field(
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
    max_conversation_turns: Annotated[int, Field(ge=1, le=1_000)] = env_field(
        d.MAX_CONVERSATION_TURNS, "MAX_CONVERSATION_TURNS"
    )
    conversation_timeout_seconds: PositiveInt = env_field(
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
    ray_address: str | None = env_field(None, "RAY_ADDRESS")
    #: Ray's token authentication, required when RAY_ADDRESS names a remote cluster.
    ray_auth_token: SecretStr | None = env_field(None, "RAY_AUTH_TOKEN")
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
    otel_exporter_otlp_endpoint: str | None = env_field(None, "OTEL_EXPORTER_OTLP_ENDPOINT")
    otel_service_name: str = env_field("chimera", "OTEL_SERVICE_NAME")

    # --- Local stack ----------------------------------------------------------
    state_dir: Path = Path(d.STATE_DIR)
    # The LLM simulator the local stack runs when no provider is configured.
    sim_host: str = d.SIM_HOST
    sim_port: Port = d.SIM_PORT
    sim_ttft_ms: Annotated[float, Field(ge=0)] = d.SIM_TTFT_MS
    sim_ms_per_token: Annotated[float, Field(ge=0)] = d.SIM_MS_PER_TOKEN
    stack_ready_timeout_s: PositiveFloat = d.STACK_READY_TIMEOUT_S

    # --- Validators -----------------------------------------------------------

    @model_validator(mode="after")
    def _check_relations(self) -> Settings:
        problems = settings_checks.problems(self)
        if problems:
            raise ConfigError(format_problems(Settings, problems))
        return self

    # --- Derived values -------------------------------------------------------

    @property
    def replay_routes(self) -> dict[str, str]:
        """Dead-letter topic -> the one input topic its records may be replayed to."""
        return {
            self.topic_conversation_dlq: self.topic_conversation_new,
            self.topic_analysis_dlq: self.topic_analysis_tasks,
        } | dict(self.dlq_routes)

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


def env_var_for(field: str) -> str:
    """The environment variable that sets ``field`` (its first name if several)."""
    return env_name(Settings, field)


def load_settings(**overrides: Any) -> Settings:
    """Read settings from the environment (and ``overrides``), or raise ConfigError."""
    try:
        return Settings(**overrides)
    except (SettingsError, ValidationError) as exc:
        raise config_error(Settings, exc) from None


@functools.cache
def get_settings() -> Settings:
    """The process's settings, read from the environment on first use."""
    return load_settings()
