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
    """The connection knobs of Settings (every field is listed in docs/settings.md).

    Each field's docstring is its description (``use_attribute_docstrings``), which
    ``chimera.settings_doc`` renders into docs/settings.md.
    """

    model_config = SettingsConfigDict(
        env_prefix="CHIMERA_",
        extra="ignore",
        frozen=True,
        validate_by_name=True,
        validate_by_alias=True,
        hide_input_in_errors=True,  # values may be secrets
        use_attribute_docstrings=True,  # a field's docstring is its description
    )

    def __repr_args__(self) -> Any:
        # A plain URL (a provider's base URL, the OTLP endpoint) may carry credentials.
        for name, value in super().__repr_args__():
            yield name, redact_url(value) if isinstance(value, str) and "://" in value else value

    # --- Redis ----------------------------------------------------------------
    redis_host: str = env_field(d.REDIS_HOST, "REDIS_HOST")
    """Host of the Redis server (broker, results and Chimera's own state)."""
    redis_port: Port = env_field(d.REDIS_PORT, "REDIS_PORT")
    """Port of the Redis server."""
    redis_password: SecretStr | None = env_field(None, "REDIS_PASSWORD")
    """Password of the Redis server."""
    redis_url: RedisUrl = env_field(None, "REDIS_URL")
    """`redis://` or `rediss://` URL; overrides host, port and password (its db path is ignored)."""
    redis_broker_db: RedisDb = d.REDIS_BROKER_DB
    """Redis database of the Celery broker."""
    redis_result_db: RedisDb = d.REDIS_RESULT_DB
    """Redis database of the Celery results."""
    redis_state_db: RedisDb = d.REDIS_STATE_DB
    """Redis database of Chimera's state: locks, limits, conversation state."""
    redis_key_prefix: str = Field(d.REDIS_KEY_PREFIX, min_length=1, max_length=64)
    """Prefix of every key Chimera and Celery write."""
    redis_socket_timeout_s: PositiveFloat = d.REDIS_SOCKET_TIMEOUT_S
    """Redis socket timeout."""
    redis_connect_timeout_s: PositiveFloat = d.REDIS_CONNECT_TIMEOUT_S
    """Redis connect timeout."""
    redis_health_check_interval_s: PositiveInt = d.REDIS_HEALTH_CHECK_INTERVAL_S
    """How often an idle Redis connection is checked before use."""

    # --- Kafka ----------------------------------------------------------------
    kafka_bootstrap_servers: BootstrapServers = env_field(
        d.KAFKA_BOOTSTRAP_SERVERS, "KAFKA_BOOTSTRAP_SERVERS"
    )
    """Kafka brokers, `host:port[,host:port]`; a local address makes the stack start its own
    broker."""
    kafka_consumer_group_id: str = env_field(
        d.KAFKA_CONSUMER_GROUP_ID, "KAFKA_CONSUMER_GROUP_ID", min_length=1
    )
    """The bridge's consumer group."""
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = env_field(
        "PLAINTEXT", "KAFKA_SECURITY_PROTOCOL"
    )
    """How every Kafka client connects (kafka-python's names)."""
    kafka_ssl_cafile: ExistingFile = env_field(None, "KAFKA_SSL_CAFILE")
    """CA bundle for Kafka TLS (must exist; else the system's)."""
    kafka_ssl_certfile: ExistingFile = env_field(None, "KAFKA_SSL_CERTFILE")
    """Client certificate for mutual TLS (must exist)."""
    kafka_ssl_keyfile: ExistingFile = env_field(None, "KAFKA_SSL_KEYFILE")
    """Client key for mutual TLS (must exist; needs the certificate)."""
    kafka_sasl_mechanism: (
        Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"] | None
    ) = env_field(None, "KAFKA_SASL_MECHANISM")
    """SASL mechanism; required with a `SASL_*` protocol (OAUTHBEARER is refused)."""
    kafka_sasl_username: str | None = env_field(None, "KAFKA_SASL_USERNAME")
    """SASL user name."""
    kafka_sasl_password: SecretStr | None = env_field(None, "KAFKA_SASL_PASSWORD")
    """SASL password."""
    kafka_topic_partitions: Annotated[int, Field(ge=1, le=1_000)] = d.KAFKA_TOPIC_PARTITIONS
    """Partitions of the topics Chimera creates (bounds how many bridges share the work)."""
    kafka_replication_factor: Annotated[int, Field(ge=1, le=10)] = d.KAFKA_REPLICATION_FACTOR
    """Replication factor of the topics Chimera creates."""
    kafka_session_timeout_ms: PositiveInt = d.KAFKA_SESSION_TIMEOUT_MS
    """Consumer group session timeout (Tansu joins in about 3 s with these two)."""
    kafka_heartbeat_interval_ms: PositiveInt = d.KAFKA_HEARTBEAT_INTERVAL_MS
    """Consumer group heartbeat interval."""
    kafka_max_poll_records: PositiveInt = d.KAFKA_MAX_POLL_RECORDS
    """Most records the bridge reads in one poll."""
    kafka_request_timeout_ms: PositiveInt = d.KAFKA_REQUEST_TIMEOUT_MS
    """Kafka client request timeout."""
    kafka_linger_ms: Annotated[int, Field(ge=0, le=1_000)] = 0
    """Producer batching delay; producers wait for acks one event at a time, so delay is pure
    latency."""

    topic_conversation_new: str = d.TOPIC_CONVERSATION_NEW
    """Input topic of conversation requests."""
    topic_conversation_turn: str = d.TOPIC_CONVERSATION_TURN
    """Output topic of `conversation.started` and `turn.requested`."""
    topic_conversation_response: str = d.TOPIC_CONVERSATION_RESPONSE
    """Output topic of `turn.completed` and `turn.failed`."""
    topic_conversation_completed: str = d.TOPIC_CONVERSATION_COMPLETED
    """Output topic of `conversation.completed` and `conversation.failed`."""
    topic_conversation_dlq: str = d.TOPIC_CONVERSATION_DLQ
    """Dead letters of conversation input."""
    topic_analysis_tasks: str = d.TOPIC_ANALYSIS_TASKS
    """Input topic of analysis tasks."""
    topic_analysis_completed: str = d.TOPIC_ANALYSIS_COMPLETED
    """Output topic of `analysis.completed`."""
    topic_analysis_dlq: str = d.TOPIC_ANALYSIS_DLQ
    """Dead letters of analysis input."""

    # --- Postgres -------------------------------------------------------------
    database_url: DatabaseUrl = env_field(SecretStr(d.DATABASE_URL), "DATABASE_URL")
    """Postgres URL (the psycopg2 driver is pinned)."""
    db_pool_size: PositiveInt = d.DB_POOL_SIZE
    """SQLAlchemy connection pool size per process."""
    db_max_overflow: Annotated[int, Field(ge=0)] = d.DB_MAX_OVERFLOW
    """Connections allowed beyond the pool size."""
    db_pool_timeout_s: PositiveFloat = d.DB_POOL_TIMEOUT_S
    """Longest wait for a pooled connection."""
    db_statement_timeout_s: Annotated[float, Field(ge=1, le=86_400)] = d.DB_STATEMENT_TIMEOUT_S
    """Longest a statement may run (Postgres `statement_timeout`); a server that answers nothing
    fails the statement 5 s later, client-side. Either way the error is retryable."""

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
