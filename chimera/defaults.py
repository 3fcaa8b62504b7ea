"""Default values, topic names and Redis key layout, in one place.

Every number carries its unit in its name.  The settings object reads these as
its defaults; nothing else should hard-code them.
"""

from __future__ import annotations

from typing import Final

# --- Kafka topics (docs/contract.md) ------------------------------------------
TOPIC_CONVERSATION_NEW: Final = "conversation.new"
TOPIC_CONVERSATION_TURN: Final = "conversation.turn"
TOPIC_CONVERSATION_RESPONSE: Final = "conversation.response"
TOPIC_CONVERSATION_COMPLETED: Final = "conversation.completed"
TOPIC_CONVERSATION_DLQ: Final = "conversation.dlq"
TOPIC_ANALYSIS_TASKS: Final = "analysis.tasks"
TOPIC_ANALYSIS_COMPLETED: Final = "analysis.completed"
TOPIC_ANALYSIS_DLQ: Final = "analysis.dlq"

KAFKA_BOOTSTRAP_SERVERS: Final = "127.0.0.1:9092"
KAFKA_CONSUMER_GROUP_ID: Final = "orchestration-service"
KAFKA_TOPIC_PARTITIONS: Final = 3
KAFKA_REPLICATION_FACTOR: Final = 1
# Tansu takes ~20 s to admit a member with the client defaults; 6 s / 2 s brings
# a group join down to ~3 s (measured) and still tolerates a slow poll.
KAFKA_SESSION_TIMEOUT_MS: Final = 6_000
KAFKA_HEARTBEAT_INTERVAL_MS: Final = 2_000
KAFKA_MAX_POLL_RECORDS: Final = 100
KAFKA_REQUEST_TIMEOUT_MS: Final = 30_000

# --- Redis ----------------------------------------------------------------------
REDIS_HOST: Final = "127.0.0.1"
REDIS_PORT: Final = 6379
# Separate logical databases for the Celery broker, Celery results and our own
# state (locks, limits, conversation state), as docs/reliability.md advises.
REDIS_BROKER_DB: Final = 0
REDIS_RESULT_DB: Final = 1
REDIS_STATE_DB: Final = 2
REDIS_KEY_PREFIX: Final = "chimera:"
REDIS_SOCKET_TIMEOUT_S: Final = 10.0
REDIS_CONNECT_TIMEOUT_S: Final = 5.0
REDIS_HEALTH_CHECK_INTERVAL_S: Final = 25

# Key names below are joined to the configured prefix.
KEY_TOPICS_QUEUE: Final = "topics:queue"  # unprefixed (docs/contract.md): producers push to it
KEY_HEARTBEAT: Final = "heartbeat"  # heartbeat:<component>[:<instance>]
KEY_TASK_STARTS: Final = "starts"  # starts:<task id>: runs begun and not finished
# A task whose runs died with their worker this many times is not run again: a task
# that kills its worker would otherwise be redelivered for ever (celery#9082).
TASK_MAX_CRASHES: Final = 3
TOPICS_CAPACITY: Final = 50
TOPICS_BATCH: Final = 20
TOPICS_DRAIN_INTERVAL_S: Final = 5.0
JOBS_FEED_INTERVAL_S: Final = 5.0
JOBS_FEED_BATCH: Final = 200
# A topic-queue item larger than this is dead-lettered unread.
TOPICS_MAX_ITEM_BYTES: Final = 65_536
# The topic queue's dead letters (a Redis list) keep at most this many entries.
TOPICS_DEAD_MAX: Final = 10_000
KEY_TOPICS_DEAD: Final = "topics:dead"
RECONCILE_AFTER_S: Final = 600.0
RECONCILE_INTERVAL_S: Final = 60.0
RECONCILE_MAX_ATTEMPTS: Final = 5

# --- Postgres ------------------------------------------------------------------
DATABASE_URL: Final = "postgresql+psycopg2://postgres@127.0.0.1:5432/chimera"
DB_POOL_SIZE: Final = 10
DB_MAX_OVERFLOW: Final = 20
DB_POOL_TIMEOUT_S: Final = 30
DB_STATEMENT_TIMEOUT_S: Final = 30.0

# --- Bridge ----------------------------------------------------------------------
# Pause intake above this many messages in the Celery queue; resume at the low mark.
BRIDGE_QUEUE_HIGH_WATER: Final = 1_000
BRIDGE_QUEUE_LOW_WATER: Final = 500
# Back-off after a dependency failure: base doubling per attempt, capped.
BRIDGE_RETRY_BASE_S: Final = 0.5
BRIDGE_RETRY_CAP_S: Final = 30.0

# --- Celery ----------------------------------------------------------------------
CELERY_QUEUE: Final = "chimera"
# Threads: LLM turns are I/O-bound; docs/performance.md ("Celery pool choice") has the measurement.
CELERY_POOL: Final = "threads"
CELERY_CONCURRENCY: Final = 32
TASK_SOFT_TIME_LIMIT_S: Final = 240
TASK_TIME_LIMIT_S: Final = 300
# Must exceed prefetch wait + the longest task + the longest retry countdown, and
# time limits must stay below half of it, or a task runs twice (docs/reliability.md).
VISIBILITY_TIMEOUT_S: Final = 3_600
UNACKED_RESTORE_INTERVAL_S: Final = 10
# The restore sweep's lock expires this long after a worker died holding it (kombu's
# default); no dead worker's task comes back while it is held.
UNACKED_MUTEX_EXPIRE_S: Final = 300
# Longer than the longest chord, so a late header still finds its group.
RESULT_EXPIRES_S: Final = 86_400
WORKER_SOFT_SHUTDOWN_TIMEOUT_S: Final = 30.0
# A worker whose liveness key is this old is dead: what it held goes back to the queue
# (tasks/recovery.py).  At least the conversation lease's TTL, so the lease of the turn
# it was running has expired when the turn comes back.
WORKER_LIVENESS_TTL_S: Final = 15.0
# How often each worker looks for dead ones.
RECOVERY_INTERVAL_S: Final = 5.0
HEARTBEAT_INTERVAL_S: Final = 30.0

# --- Conversations ---------------------------------------------------------------
MIN_CONVERSATION_TURNS: Final = 5
MAX_CONVERSATION_TURNS: Final = 10
CONVERSATION_TIMEOUT_SECONDS: Final = 300
MAX_PARTICIPANTS: Final = 8
TURN_MAX_OUTPUT_TOKENS: Final = 400
CONVERSATION_LOCK_TTL_S: Final = 15.0
TURN_MAX_RETRIES: Final = 8
# Longest pause a retried turn waits (well below the visibility timeout).
TURN_RETRY_CAP_S: Final = 120.0
DEFAULT_PARTICIPANTS: Final = (
    {"provider": "anthropic", "model": "claude-sonnet-5-5"},
    {"provider": "google", "model": "gemini-3.5-flash"},
)

# --- Input limits ------------------------------------------------------------------
MAX_EVENT_BYTES: Final = 1_048_576
MAX_SEGMENTS: Final = 2_000
MAX_TEXT_CHARS: Final = 200_000
# Deeper JSON is refused: near Python's recursion limit a payload that parses can still
# fail to serialise a few frames further down (storing it, re-reading it in a task).
MAX_JSON_DEPTH: Final = 100
# Attacker-chosen text (a JSON key, a field value, an error that quotes either) is cut
# to this many characters wherever it is logged, quoted in an error or copied into a
# dead-letter header; the cut is marked (chimera/untrusted.py).
MAX_QUOTED_CHARS: Final = 256
# A log line's message is cut to this many characters (its traceback is kept).
MAX_LOG_MESSAGE_CHARS: Final = 8_192
# Metadata an event may ask to be copied into its output events (conversation.completed
# must fit the producer's 1 MiB record limit after every turn was paid for).
MAX_OUTPUT_METADATA_BYTES: Final = 65_536

# --- LLM governance ------------------------------------------------------------------
RATE_LIMIT_REQUESTS_PER_MINUTE: Final = 60
# Explicit SDK timeouts: the SDK defaults are 600 s (anthropic) or none (google-genai).
LLM_TIMEOUT_S: Final = 60.0
LLM_CONNECT_TIMEOUT_S: Final = 5.0
# A caller waits this long for the limiter, then gets a retryable "try later".
LLM_MAX_WAIT_S: Final = 5.0
# Our sliding window is this much longer than a minute: the provider stamps a
# request a little after we admit it, so an exact window could overrun theirs.
LLM_WINDOW_MARGIN_S: Final = 1.0
BREAKER_FAILURE_THRESHOLD: Final = 5
BREAKER_COOLDOWN_S: Final = 30.0

# --- Analysis ----------------------------------------------------------------------------
# The model every analysis uses unless told otherwise (CHIMERA_ANALYSIS_MODELS overrides per kind).
ANALYSIS_PROVIDER: Final = "anthropic"
ANALYSIS_MODEL: Final = "claude-sonnet-5-5"
ANALYSIS_MAX_OUTPUT_TOKENS: Final = 2_048
# Input tokens an analysis may send; longer inputs are truncated (said in the result).
ANALYSIS_INPUT_TOKEN_BUDGET: Final = 24_000
ANALYSIS_MAX_RETRIES: Final = 4
# Longest pause a retried analysis waits (below the visibility timeout).
ANALYSIS_RETRY_CAP_S: Final = 60.0
# A synchronous /orchestrator/analyze call gives up after this long.
ANALYZE_TIMEOUT_S: Final = 120.0

# --- HTTP -----------------------------------------------------------------------------
HTTP_HOST: Final = "127.0.0.1"
HTTP_PORT: Final = 8085
HTTP_WORKERS: Final = 2
HTTP_THREADS: Final = 8
# Request bodies larger than this are refused with 413.
HTTP_MAX_BODY_BYTES: Final = 2_097_152
# /readyz answers from a cache this young (each fresh check opens Kafka, Redis and
# Postgres connections: probes must not be able to hammer them).
READYZ_CACHE_S: Final = 5.0
# Values of a secret setting that are placeholders, never credentials (.env.example's).
PLACEHOLDER_SECRET_PREFIX: Final = "change-me"  # noqa: S105 - a marker, not a secret

# --- Each process's own metrics listener (chimera.metrics_server) ------------------------------
METRICS_HOST: Final = "127.0.0.1"
# 0: a worker or bridge serves no /metrics of its own unless CHIMERA_METRICS_PORT says where.
METRICS_PORT: Final = 0
# The local stack's first metrics port: its worker listens here, its bridge on the next one
# (STACK_METRICS_PORTS gives each component's offset from it).
STACK_METRICS_PORT: Final = 9461
STACK_METRICS_PORTS: Final = {"worker": 0, "bridge": 1}

# --- Flower ----------------------------------------------------------------------------------
FLOWER_HOST: Final = "127.0.0.1"
FLOWER_PORT: Final = 5555

# --- LLM simulator (local stack) ---------------------------------------------------------
SIM_HOST: Final = "127.0.0.1"
SIM_PORT: Final = 8089
# Enough latency to look like a real model in the demo, little enough to finish fast.
SIM_TTFT_MS: Final = 150.0
SIM_MS_PER_TOKEN: Final = 2.0

# --- Local stack --------------------------------------------------------------------------
STATE_DIR: Final = ".chimera"
STACK_READY_TIMEOUT_S: Final = 60.0
STACK_STOP_TIMEOUT_S: Final = 20.0
# The local stack's broker keeps its records in a local S3 server (moto's) on this port,
# in this bucket; "memory" keeps them in the broker process only.
KAFKA_STORAGE: Final = "s3"
KAFKA_S3_PORT: Final = 9095
KAFKA_S3_BUCKET: Final = "chimera-kafka"
# A dead-lettered record is replayed at most this many times.
DLQ_MAX_REPLAYS: Final = 3
