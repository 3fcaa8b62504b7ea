"""Where Redis, Kafka and Postgres are, and how Chimera reaches them.

``ServiceSettings`` is the base of ``chimera.settings.Settings``: it holds the
model's configuration (``CHIMERA_`` prefix, frozen, inputs hidden from errors),
the connection fields, and the URLs, topic names and key names derived from them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from chimera import defaults as d
from chimera.settings_env import env_field
from chimera.settings_values import (
    BootstrapServers,
    DatabaseUrl,
    ExistingFile,
    Port,
    PositiveFloat,
    PositiveInt,
    RedisDb,
    RedisUrl,
    redact_url,
)


class ServiceSettings(BaseSettings):
    """The connection knobs of Settings (see the README's configuration table)."""

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
    redis_host: str = env_field(d.REDIS_HOST, "REDIS_HOST")
    redis_port: Port = env_field(d.REDIS_PORT, "REDIS_PORT")
    redis_password: SecretStr | None = env_field(None, "REDIS_PASSWORD")
    # Overrides host/port/password; the db in its path is ignored (see *_db below).
    redis_url: RedisUrl = env_field(None, "REDIS_URL")
    redis_broker_db: RedisDb = d.REDIS_BROKER_DB
    redis_result_db: RedisDb = d.REDIS_RESULT_DB
    redis_state_db: RedisDb = d.REDIS_STATE_DB
    redis_key_prefix: str = Field(d.REDIS_KEY_PREFIX, min_length=1, max_length=64)
    redis_socket_timeout_s: PositiveFloat = d.REDIS_SOCKET_TIMEOUT_S
    redis_connect_timeout_s: PositiveFloat = d.REDIS_CONNECT_TIMEOUT_S
    redis_health_check_interval_s: PositiveInt = d.REDIS_HEALTH_CHECK_INTERVAL_S

    # --- Kafka ----------------------------------------------------------------
    kafka_bootstrap_servers: BootstrapServers = env_field(
        d.KAFKA_BOOTSTRAP_SERVERS, "KAFKA_BOOTSTRAP_SERVERS"
    )
    kafka_consumer_group_id: str = env_field(
        d.KAFKA_CONSUMER_GROUP_ID, "KAFKA_CONSUMER_GROUP_ID", min_length=1
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = env_field(
        "PLAINTEXT", "KAFKA_SECURITY_PROTOCOL"
    )
    kafka_ssl_cafile: ExistingFile = env_field(None, "KAFKA_SSL_CAFILE")
    kafka_ssl_certfile: ExistingFile = env_field(None, "KAFKA_SSL_CERTFILE")
    kafka_ssl_keyfile: ExistingFile = env_field(None, "KAFKA_SSL_KEYFILE")
    kafka_sasl_mechanism: (
        Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"] | None
    ) = env_field(None, "KAFKA_SASL_MECHANISM")
    kafka_sasl_username: str | None = env_field(None, "KAFKA_SASL_USERNAME")
    kafka_sasl_password: SecretStr | None = env_field(None, "KAFKA_SASL_PASSWORD")
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
    database_url: DatabaseUrl = env_field(SecretStr(d.DATABASE_URL), "DATABASE_URL")
    db_pool_size: PositiveInt = d.DB_POOL_SIZE
    db_max_overflow: Annotated[int, Field(ge=0)] = d.DB_MAX_OVERFLOW
    db_pool_timeout_s: PositiveFloat = d.DB_POOL_TIMEOUT_S

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

    def redis_key(self, *parts: str) -> str:
        """A key in our own namespace: ``<prefix><part>:<part>...``."""
        return self.redis_key_prefix + ":".join(parts)
