"""Celery configuration: plain values copied from chimera's settings.

No logic lives here; every number comes from ``chimera.settings`` (and so from
the environment).  Why each reliability setting is set is written beside it;
the background is in docs/reliability.md and docs/architecture.md ("Celery").
"""

from chimera.settings import get_settings

_s = get_settings()

broker_url = _s.celery_broker_url
result_backend = _s.celery_result_url
imports = ("tasks.system", "tasks.conversation", "tasks.analysis", "tasks.periodic", "tasks.judge")
task_default_queue = _s.celery_queue

# --- Serialisation: JSON only; never pickle (a task body is not code) ------------
task_serializer = "json"
result_serializer = "json"
accept_content = ("json",)
timezone = "UTC"
enable_utc = True

# --- At-least-once delivery; every task must be idempotent -------------------------
task_acks_late = True  # ack after the task ran, not before
task_reject_on_worker_lost = True  # a killed child's task is redelivered, not acked
task_acks_on_failure = True  # Redis has no DLX: we dead-letter in code
task_acks_on_timeout = True  # (both replace task_acks_on_failure_or_timeout, deprecated in 5.7)
worker_prefetch_multiplier = 1  # prefetched tasks count against the visibility timeout
worker_deduplicate_successful_tasks = True  # a redelivered, finished task is skipped

# --- Visibility timeout: in all three places, or some use the 1 h default -----------
visibility_timeout = _s.visibility_timeout_s
broker_transport_options = {
    "visibility_timeout": _s.visibility_timeout_s,
    "global_keyprefix": _s.redis_key_prefix,
    "socket_timeout": _s.redis_socket_timeout_s,
    "socket_connect_timeout": _s.redis_connect_timeout_s,
    "health_check_interval": _s.redis_health_check_interval_s,
    "retry_on_timeout": True,
    # How often a worker looks for messages whose holder died (past the visibility
    # timeout) and puts them back.  kombu's default is every 10 x 10 = 100 s.
    "unacked_restore_interval": _s.unacked_restore_interval_s,
    "unacked_restore_throttle": 1,
    # A worker killed inside its sweep leaves the sweep's lock behind: nothing is
    # restored until it expires.
    "unacked_mutex_expire": _s.unacked_mutex_expire_s,
}
result_backend_transport_options = {
    "visibility_timeout": _s.visibility_timeout_s,
    "global_keyprefix": _s.redis_key_prefix,
}

# --- Time limits: soft < hard < visibility timeout / 2 (checked by the settings) ------
task_soft_time_limit = _s.task_soft_time_limit_s
task_time_limit = _s.task_time_limit_s
result_expires = _s.result_expires_s  # longer than the longest chord

# --- Redis connections ------------------------------------------------------------------
redis_backend_health_check_interval = _s.redis_health_check_interval_s
redis_socket_timeout = _s.redis_socket_timeout_s
redis_socket_connect_timeout = _s.redis_connect_timeout_s
redis_retry_on_timeout = True
result_backend_always_retry = True
result_backend_max_retries = 10
result_backend_thread_safe = True
broker_connection_retry_on_startup = True
worker_cancel_long_running_tasks_on_connection_loss = True

# --- Pool: LLM calls are I/O-bound: many threads per process (docs/performance.md) ---
worker_pool = _s.celery_pool
worker_concurrency = _s.celery_concurrency
worker_soft_shutdown_timeout = _s.worker_soft_shutdown_timeout_s
worker_enable_soft_shutdown_on_idle = True

# --- Monitoring ----------------------------------------------------------------------------------
# Task events cost ~1 ms of worker CPU per task (+0.5 ms to the sender), started-state
# tracking ~0.7 ms (bench, docs/performance.md): off unless asked for.  Flower turns
# events on in running workers by itself while it watches them.
worker_send_task_events = _s.celery_task_events
task_send_sent_event = _s.celery_task_events
task_track_started = False
result_extended = False

# --- Beat -----------------------------------------------------------------------------------
beat_schedule_filename = str(_s.run_dir / "celerybeat-schedule")
beat_schedule = {
    "canary": {
        "task": "chimera.system.canary",
        "schedule": _s.heartbeat_interval_s,
        "kwargs": {"source": "beat"},
        "options": {"expires": _s.heartbeat_interval_s},
    },
    "drain-topics": {
        "task": "chimera.topics.drain",
        "schedule": _s.topics_drain_interval_s,
        "options": {"expires": _s.topics_drain_interval_s},
    },
    "feed-jobs": {
        "task": "chimera.jobs.feed",
        "schedule": _s.jobs_feed_interval_s,
        "options": {"expires": _s.jobs_feed_interval_s},
    },
    "reconcile": {
        "task": "chimera.reconcile",
        "schedule": _s.reconcile_interval_s,
        "options": {"expires": _s.reconcile_interval_s},
    },
}
