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
from chimera.models.participants import Participant, Route
from chimera.settings_env import config_error, env_field, env_name, format_problems, to_env
from chimera.settings_services import ServiceSettings
from chimera.settings_values import (
    BaseUrl,
    EndpointName,
    ModelLimits,
    ModelName,
    OpenAIEndpoint,
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

    Every field is listed, with its variable, type, default and docstring, in
    docs/settings.md (generated: ``python -m chimera.settings_doc``).
    """

    # --- LLM providers --------------------------------------------------------
    anthropic_api_key: SecretStr | None = env_field(None, "ANTHROPIC_API_KEY")
    """Anthropic API key; a provider is used when it has a key or a base URL."""
    google_api_key: SecretStr | None = env_field(None, "GOOGLE_API_KEY", "GEMINI_API_KEY")
    """Google (Gemini) API key."""
    openai_api_key: SecretStr | None = env_field(None, "OPENAI_API_KEY")
    """OpenAI API key (or a key for an OpenAI-compatible server)."""
    anthropic_base_url: BaseUrl = env_field(None, "ANTHROPIC_BASE_URL")
    """Points Anthropic's SDK at the simulator, a proxy or a local server."""
    google_gemini_base_url: BaseUrl = env_field(None, "GOOGLE_GEMINI_BASE_URL")
    """Points the Gemini SDK at the simulator, a proxy or a local server."""
    openai_base_url: BaseUrl = env_field(None, "OPENAI_BASE_URL")
    """Points the OpenAI SDK at the simulator or an OpenAI-compatible server (vLLM, Ollama)."""
    openai_endpoints: dict[EndpointName, OpenAIEndpoint] = Field(default_factory=dict)
    """JSON: more OpenAI-compatible servers by name, e.g. `{"vllm": {"base_url":
    "http://10.0.0.5:8000/v1", "api_key_env": "VLLM_KEY"}}` (or an inline secret `api_key`); a
    participant picks one with `endpoint`; each has its own limits, breakers and models under
    `openai:<name>`."""
    rate_limit_requests_per_minute: PositiveInt = env_field(
        d.RATE_LIMIT_REQUESTS_PER_MINUTE, "RATE_LIMIT_REQUESTS_PER_MINUTE"
    )
    """Requests per minute per provider, shared fleet-wide by all its models (per model with scope
    `model`)."""
    llm_limits: dict[str, ModelLimits] = Field(default_factory=dict)
    """JSON: `{"anthropic": {"rpm": 50}, "anthropic/claude-sonnet-5-5": {"itpm": 30000, "otpm":
    8000}}`; a provider's entry sets its shared window, a `provider/model` entry adds that model's
    own (it can only tighten)."""
    llm_models: dict[str, list[ModelName]] = Field(default_factory=dict)
    """JSON: the models events may name, per provider, e.g. `{"openai": ["llama-3.3-70b"]}`; a
    provider (or `openai:<endpoint>`) left out allows the models the price table lists for it; the
    default participants and analysis models are always allowed."""
    llm_limit_scope: Literal["provider", "model"] = "provider"
    """`provider`: limits count per provider, whatever model a call names; `model`: one window per
    model, its entry over its provider's."""
    llm_timeout_s: PositiveFloat = d.LLM_TIMEOUT_S
    """Timeout of one LLM call (the SDK defaults are 600 s or none)."""
    llm_connect_timeout_s: PositiveFloat = d.LLM_CONNECT_TIMEOUT_S
    """Connect timeout of one LLM call."""
    llm_sdk_max_retries: Annotated[int, Field(ge=0, le=1)] = 0
    """The SDK's own retries, 0 or 1; real retries are Chimera's."""
    llm_max_wait_s: Annotated[float, Field(ge=0)] = d.LLM_MAX_WAIT_S
    """Longest wait for the limiter before a retryable "try later" (`RateLimited`)."""
    llm_window_margin_s: Annotated[float, Field(ge=0, le=30)] = d.LLM_WINDOW_MARGIN_S
    """The sliding window is this much longer than the limit window, so it never overruns the
    provider's."""
    llm_limit_window_s: Annotated[float, Field(gt=0, le=3_600)] = 60.0
    """Length of the limit window; limits are per minute, only tests shorten it."""
    breaker_failure_threshold: PositiveInt = d.BREAKER_FAILURE_THRESHOLD
    """Consecutive retryable failures that open a model's circuit breaker."""
    breaker_cooldown_s: PositiveFloat = d.BREAKER_COOLDOWN_S
    """How long a breaker stays open before one probe is let through."""
    price_table_path: Path | None = None
    """Another price table (the bundled `chimera/data/prices.json`'s JSON shape)."""
    accounting_flush_ms: Annotated[float, Field(ge=0, le=10_000)] = 50.0
    """`llm_calls` rows are written in batches this often (0: one write per call, inline)."""

    # --- Conversations --------------------------------------------------------
    min_conversation_turns: Annotated[int, Field(ge=1, le=1_000)] = d.MIN_CONVERSATION_TURNS
    """Default `min_turns` of a conversation."""
    max_conversation_turns: Annotated[int, Field(ge=1, le=1_000)] = env_field(
        d.MAX_CONVERSATION_TURNS, "MAX_CONVERSATION_TURNS"
    )
    """Default `max_turns` of a request, and the most a request may ask for."""
    conversation_timeout_seconds: PositiveInt = env_field(
        d.CONVERSATION_TIMEOUT_SECONDS, "CONVERSATION_TIMEOUT_SECONDS"
    )
    """A conversation's time budget, counted from its first turn."""
    max_running_conversations: Annotated[int, Field(ge=1)] | None = None
    """Fleet-wide cap on conversations running at once; the others wait for admission, by
    `priority` then arrival. Unset: `rate_limit_requests_per_minute` x
    `CONVERSATION_TIMEOUT_SECONDS` / 60 / (2 x `MAX_CONVERSATION_TURNS`), at least 1 (the
    running conversations' turns fit in half their time budget at one provider's request limit;
    15 with the defaults)."""
    max_participants: Annotated[int, Field(ge=2, le=64)] = d.MAX_PARTICIPANTS
    """Most participants per conversation."""
    conversation_lock_ttl_s: Annotated[float, Field(ge=1, le=600)] = d.CONVERSATION_LOCK_TTL_S
    """TTL of a conversation's lease (extended every third while a turn works)."""
    turn_max_output_tokens: Annotated[int, Field(ge=16, le=32_000)] = d.TURN_MAX_OUTPUT_TOKENS
    """Output tokens a turn may ask for."""
    turn_max_retries: Annotated[int, Field(ge=0, le=100)] = d.TURN_MAX_RETRIES
    """Retries of a turn's retryable LLM failure before the conversation fails."""
    topics_queue_key: str = Field(d.KEY_TOPICS_QUEUE, min_length=1)
    """The Redis list the data-ingestion service fills with topics (not under the key prefix)."""
    topics_capacity: Annotated[int, Field(ge=1)] = d.TOPICS_CAPACITY
    """The topic queue starts conversations only while fewer than this many run."""
    topics_batch: Annotated[int, Field(ge=1)] = d.TOPICS_BATCH
    """Most topics one drain of the queue starts."""
    topics_drain_interval_s: PositiveFloat = d.TOPICS_DRAIN_INTERVAL_S
    """How often beat drains the topic queue."""
    jobs_feed_interval_s: PositiveFloat = d.JOBS_FEED_INTERVAL_S
    """How often beat feeds the running jobs (`chimera jobs`) their next conversations."""
    jobs_feed_batch: Annotated[int, Field(ge=1)] = d.JOBS_FEED_BATCH
    """Most `conversation.new` events one feed publishes for one job."""
    topics_max_item_bytes: Annotated[int, Field(ge=256)] = d.TOPICS_MAX_ITEM_BYTES
    """A larger queue item is dead-lettered unread (`too_large`)."""
    topics_dead_max: PositiveInt = d.TOPICS_DEAD_MAX
    """The queue's dead letters kept (the newest)."""
    reconcile_after_s: PositiveFloat = d.RECONCILE_AFTER_S
    """An inbox event untouched this long is re-driven by the reconciler."""
    reconcile_interval_s: PositiveFloat = d.RECONCILE_INTERVAL_S
    """How often beat runs the reconciler."""
    reconcile_max_attempts: Annotated[int, Field(ge=1)] = d.RECONCILE_MAX_ATTEMPTS
    """Re-drives of one event before the reconciler dead-letters it."""
    default_participants: list[Participant] = Field(
        default_factory=lambda: [Participant.model_validate(p) for p in d.DEFAULT_PARTICIPANTS],
        min_length=2,
    )
    """JSON list of `{provider, model, persona?, name?}`: the participants of a request that names
    none."""

    # --- Near-duplicates ------------------------------------------------------
    near_duplicate_threshold: Annotated[float, Field(ge=0.5, le=1.0)] = 0.8
    """Estimated Jaccard similarity (of word 3-gram shingles) at or above which a conversation
    is a near-duplicate of one already in the fleet's index."""
    near_duplicate_num_perm: Annotated[int, Field(ge=16, le=1_024)] = 128
    """MinHash permutations per signature; changing it (or the bands) starts a new, empty
    index."""
    near_duplicate_bands: Annotated[int, Field(ge=1, le=256)] = 16
    """LSH bands the signature is cut into (`CHIMERA_NEAR_DUPLICATE_NUM_PERM` must be a multiple);
    more bands find lower similarities as candidates, at more Redis memory per conversation."""

    # --- LLM judge --------------------------------------------------------------
    judge_sample_rate: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0
    """Share of completed conversations an LLM judge rates with a rubric, chosen by a hash of
    the conversation id (a retried finalise makes the same choice); 0: off."""
    judge_provider: Route | None = None
    """The judge's route (`anthropic`, `google`, `openai` or `openai:<endpoint>`), refused for a
    conversation with a participant of its family; unset: the first configured provider of
    another family than every participant's (docs/quality-judge.md)."""
    judge_model: ModelName | None = None
    """The judge's model; unset: the model the settings already use on the judge's route
    (analysis, default participants), else the first its catalog allows."""
    judge_pairwise: bool = False
    """Also compare each judged conversation with the job's previously judged one, asked in
    both orders (two more calls)."""
    judge_max_retries: Annotated[int, Field(ge=0, le=100)] = 2
    """Retries of a judge call's retryable failure before the judgement is recorded failed."""

    # --- Input limits ---------------------------------------------------------
    max_event_bytes: Annotated[int, Field(ge=1_024)] = d.MAX_EVENT_BYTES
    """Larger input events are dead-lettered (`too_large`); also bounds a segments file."""
    max_quoted_chars: Annotated[int, Field(ge=32, le=100_000)] = d.MAX_QUOTED_CHARS
    """Most characters of input text an error, a log line or a header quotes, with a `…[N more
    chars]` marker."""
    max_log_message_chars: Annotated[int, Field(ge=256, le=10_000_000)] = d.MAX_LOG_MESSAGE_CHARS
    """A log line's message is cut to this (marked, before masking, never inside a word); its
    traceback is kept."""
    max_output_metadata_bytes: Annotated[int, Field(ge=256, le=524_288)] = (
        d.MAX_OUTPUT_METADATA_BYTES
    )
    """Most an event's `metadata` may hold as JSON (else `schema_invalid`); it is copied into
    `conversation.completed`."""
    score_max_line_bytes: Annotated[int, Field(ge=1_024, le=1_073_741_824)] = 4 * 1_048_576
    """Longest line `chimera score` reads (bytes, its line break aside); a longer one is that
    line's error, passed over unread, and the rest of the file is scored."""

    # --- Bridge ---------------------------------------------------------------
    bridge_queue_high_water: PositiveInt = d.BRIDGE_QUEUE_HIGH_WATER
    """The bridge pauses intake above this many tasks in the Celery queue."""
    bridge_queue_low_water: Annotated[int, Field(ge=0)] = d.BRIDGE_QUEUE_LOW_WATER
    """The bridge resumes intake below this many."""
    bridge_retry_base_s: PositiveFloat = d.BRIDGE_RETRY_BASE_S
    """First back-off of the bridge during an outage (doubling per attempt)."""
    bridge_retry_cap_s: PositiveFloat = d.BRIDGE_RETRY_CAP_S
    """Longest back-off of the bridge during an outage."""

    # --- Celery ---------------------------------------------------------------
    celery_queue: str = Field(d.CELERY_QUEUE, min_length=1)
    """The Celery queue Chimera's tasks go to."""
    celery_pool: Literal["threads", "solo"] = d.CELERY_POOL
    """Worker pool: threads, since LLM calls are I/O-bound (docs/architecture.md); solo
    runs one task at a time.  Prefork and gevent are refused (docs/reliability.md)."""
    celery_concurrency: Annotated[int, Field(ge=1, le=1_024)] = d.CELERY_CONCURRENCY
    """Tasks (LLM calls) one worker process keeps in flight."""
    celery_task_events: bool = False
    """Workers send task events for monitoring (about 1.5 ms CPU per task)."""
    task_soft_time_limit_s: PositiveInt = d.TASK_SOFT_TIME_LIMIT_S
    """Soft time limit of a task; soft < hard <= visibility timeout / 2."""
    task_time_limit_s: PositiveInt = d.TASK_TIME_LIMIT_S
    """Hard time limit of a task."""
    visibility_timeout_s: PositiveInt = d.VISIBILITY_TIMEOUT_S
    """Redis redelivers an unacked task after this long."""
    unacked_restore_interval_s: PositiveInt = d.UNACKED_RESTORE_INTERVAL_S
    """How often a worker re-queues a dead worker's tasks (past the visibility timeout)."""
    unacked_mutex_expire_s: PositiveInt = d.UNACKED_MUTEX_EXPIRE_S
    """How long a worker killed during that sweep blocks it (the sweep lock's expiry)."""
    result_expires_s: PositiveInt = d.RESULT_EXPIRES_S
    """How long task results are kept (longer than any chord)."""
    worker_soft_shutdown_timeout_s: Annotated[float, Field(ge=0)] = d.WORKER_SOFT_SHUTDOWN_TIMEOUT_S
    """How long a stopping worker lets running tasks finish."""
    heartbeat_interval_s: PositiveFloat = d.HEARTBEAT_INTERVAL_S
    """Cadence of beat's canary and the liveness heartbeats."""
    worker_liveness_ttl_s: Annotated[float, Field(ge=1)] = d.WORKER_LIVENESS_TTL_S
    """A worker silent this long is dead: its messages go back to the queue at once."""
    recovery_interval_s: PositiveFloat = d.RECOVERY_INTERVAL_S
    """How often each worker looks for dead workers' messages."""

    # --- Analysis -------------------------------------------------------------
    analysis_provider: Literal["anthropic", "google", "openai"] = d.ANALYSIS_PROVIDER
    """Provider of every analysis."""
    analysis_model: str = Field(d.ANALYSIS_MODEL, min_length=1)
    """Model of every analysis."""
    analysis_models: dict[AnalysisKind, Participant] = Field(default_factory=dict)
    """JSON per-analysis override, e.g. `{"logic_bias": {"provider": "google", "model":
    "gemini-3.5-flash"}}`."""
    analysis_max_output_tokens: Annotated[int, Field(ge=64, le=64_000)] = (
        d.ANALYSIS_MAX_OUTPUT_TOKENS
    )
    """Output tokens an analysis call may ask for."""
    analysis_input_token_budget: Annotated[int, Field(ge=256, le=2_000_000)] = (
        d.ANALYSIS_INPUT_TOKEN_BUDGET
    )
    """Input tokens an analysis may send; longer input is cut (said in the bundle)."""
    analysis_max_retries: Annotated[int, Field(ge=0, le=100)] = d.ANALYSIS_MAX_RETRIES
    """Retries of a retryable failure before an analysis reports `error`."""
    analyze_completed_conversations: bool = False
    """Analyse every completed conversation (one analysis event each)."""
    analyze_executor: Literal["threads", "ray"] = "threads"
    """Fan-out of `/orchestrator/analyze`: a thread pool, or Ray (local, or `RAY_ADDRESS`)."""
    ray_address: str | None = env_field(None, "RAY_ADDRESS")
    """The Ray cluster of the `ray` executor; unset or `local`: a local Ray."""
    ray_auth_token: SecretStr | None = env_field(None, "RAY_AUTH_TOKEN")
    """Ray's token authentication; required when `RAY_ADDRESS` names a cluster."""
    analyze_timeout_s: PositiveFloat = d.ANALYZE_TIMEOUT_S
    """Longest a synchronous analysis keeps retrying."""

    # --- HTTP -----------------------------------------------------------------
    http_host: str = d.HTTP_HOST
    """Where the web app listens (gunicorn binds it); not loopback only with an API token."""
    http_port: Port = d.HTTP_PORT
    """Port of the web app."""
    http_workers: Annotated[int, Field(ge=1, le=64)] = d.HTTP_WORKERS
    """gunicorn worker processes of the web app."""
    http_threads: Annotated[int, Field(ge=1, le=256)] = d.HTTP_THREADS
    """Threads per gunicorn worker."""
    http_max_body_bytes: Annotated[int, Field(ge=1_024)] = d.HTTP_MAX_BODY_BYTES
    """Larger request bodies get 413."""
    api_token: SecretStr | None = None
    """Bearer token required on every route but `/healthz` and `/readyz`'s status."""
    allow_anonymous: bool = False
    """Serve a non-loopback host without an API token (logged as a warning)."""
    metrics_token: SecretStr | None = None
    """A scraper's bearer token: opens `/metrics` and `/readyz`'s details only."""
    readyz_cache_s: Annotated[float, Field(ge=0, le=300)] = d.READYZ_CACHE_S
    """`/readyz` reuses its report this long (one round of checks per interval)."""
    http_allowed_hosts: list[str] = Field(default_factory=list)
    """JSON: `Host` names answered besides the loopback names (others get 421); `["*"]`: any."""

    # --- Flower ---------------------------------------------------------------
    flower_host: str = d.FLOWER_HOST
    """Where the local stack's Flower listens."""
    flower_port: Port = d.FLOWER_PORT
    """Port of the local stack's Flower."""
    flower_basic_auth: SecretStr | None = None
    """`user:password` for Flower's basic auth; unset: no auth (local only)."""

    # --- Dead-letter replay ----------------------------------------------------
    dlq_max_replays: Annotated[int, Field(ge=0, le=1_000)] = d.DLQ_MAX_REPLAYS
    """Replays of one event's dead letter before `dlq replay` refuses it."""
    dlq_routes: dict[str, str] = Field(default_factory=dict)
    """JSON: dead-letter topic -> the one input topic `dlq replay` publishes to, over the defaults
    (`conversation.dlq` -> `conversation.new`, `analysis.dlq` -> `analysis.tasks`)."""

    # --- Observability --------------------------------------------------------
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """Log level."""
    log_format: Literal["text", "json"] = "text"
    """`text` locally, `json` (one object per line) in production."""
    otel_exporter_otlp_endpoint: str | None = env_field(None, "OTEL_EXPORTER_OTLP_ENDPOINT")
    """OTLP/HTTP endpoint; tracing is off while unset."""
    otel_service_name: str = env_field("chimera", "OTEL_SERVICE_NAME")
    """Service name of the traces."""
    metrics_host: str = d.METRICS_HOST
    """Where a worker's or the bridge's own `/metrics` listens; not loopback only with a token."""
    metrics_port: Annotated[int, Field(ge=0, le=65_535)] = d.METRICS_PORT
    """Port of a worker's or the bridge's own `/metrics` (one per process); 0: not served."""

    # --- Local stack ----------------------------------------------------------
    state_dir: Path = Path(d.STATE_DIR)
    """Pid files, logs and beat schedule of the local stack."""
    sim_host: str = d.SIM_HOST
    """Where the local stack's LLM simulator listens."""
    sim_port: Port = d.SIM_PORT
    """Port of the local stack's LLM simulator."""
    sim_ttft_ms: Annotated[float, Field(ge=0)] = d.SIM_TTFT_MS
    """The simulator's time to first token."""
    sim_ms_per_token: Annotated[float, Field(ge=0)] = d.SIM_MS_PER_TOKEN
    """The simulator's time per output token."""
    stack_ready_timeout_s: PositiveFloat = d.STACK_READY_TIMEOUT_S
    """How long `stack up` waits for each component to be ready."""

    # --- Local stack's Kafka broker storage --------------------------------------
    kafka_storage: Literal["s3", "memory"] = d.KAFKA_STORAGE
    """Where the local stack's broker keeps records: `s3` (a local S3 server the stack runs; they
    survive a broker restart) or `memory` (a broker restart loses them). Not used with an
    external cluster."""
    kafka_s3_port: Port = d.KAFKA_S3_PORT
    """Port of the local stack's S3 server (on 127.0.0.1) when `CHIMERA_KAFKA_STORAGE` is
    `s3`."""

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
