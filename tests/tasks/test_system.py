"""The Celery app on the real Redis broker: configuration, embedded and real workers."""

from __future__ import annotations

import signal
import time
from typing import Any

import pytest

from chimera import heartbeat
from chimera.stack.checks import celery_client, run_canary
from tasks.system import canary
from tests.helpers import wait_for


def test_reliability_settings_are_on(celery_config: dict[str, Any], settings: Any) -> None:
    assert celery_config["task_acks_late"] is True
    assert celery_config["task_reject_on_worker_lost"] is True
    assert celery_config["task_acks_on_failure"] is True
    assert celery_config["task_acks_on_timeout"] is True
    assert celery_config["worker_prefetch_multiplier"] == 1
    vt = settings.visibility_timeout_s
    assert celery_config["visibility_timeout"] == vt
    assert celery_config["broker_transport_options"]["visibility_timeout"] == vt
    assert celery_config["result_backend_transport_options"]["visibility_timeout"] == vt
    assert celery_config["task_soft_time_limit"] < celery_config["task_time_limit"] <= vt / 2
    assert celery_config["result_expires"] > celery_config["task_time_limit"]
    assert celery_config["worker_pool"] == "threads"
    assert celery_config["accept_content"] == ("json",)
    assert celery_config["redis_backend_health_check_interval"] > 0


def test_canary_round_trips_through_the_embedded_worker(
    celery_session_worker: Any, settings: Any, redis_server: None
) -> None:
    from chimera.redis_client import make_redis

    result = canary.apply_async(kwargs={"source": "beat", "sent_at": 1.0})
    reply = result.get(timeout=20)
    assert reply["source"] == "beat"
    assert reply["sent_at"] == 1.0
    client = make_redis(settings)
    try:
        workers = heartbeat.read(client, settings, "worker")
        beats = heartbeat.read(client, settings, "beat")
    finally:
        client.close()
    assert reply["worker"] in {b.instance for b in workers}
    assert beats and beats[0].age_s < 30


def test_celery_keys_live_under_the_configured_prefix(
    celery_session_worker: Any, settings: Any
) -> None:
    import redis

    result = canary.delay(source="prefix-test")
    result.get(timeout=20)
    backend = redis.Redis.from_url(settings.celery_result_url)
    try:
        assert backend.exists(f"{settings.redis_key_prefix}celery-task-meta-{result.id}") == 1
        assert backend.exists(f"celery-task-meta-{result.id}") == 0
    finally:
        backend.close()


@pytest.mark.subprocess_worker
def test_a_real_worker_process_runs_tasks_and_a_killed_one_is_replaced(
    worker_process: Any, settings: Any
) -> None:
    first = worker_process()
    assert run_canary(first.settings, timeout_s=10)["source"] == "stack"
    first.kill()
    assert first.proc.poll() == -signal.SIGKILL

    # A task sent while no worker runs waits in the queue, and the next worker runs it.
    app = celery_client(first.settings)
    pending = app.send_task("chimera.system.canary", kwargs={"source": "queued"})
    time.sleep(0.5)
    assert pending.state == "PENDING"
    second = worker_process()
    assert pending.get(timeout=30)["source"] == "queued"
    assert second.pid != first.pid
    app.close()


@pytest.mark.subprocess_worker
def test_a_worker_shuts_down_warmly_on_sigterm(worker_process: Any) -> None:
    worker = worker_process()
    worker.stop()
    assert worker.proc.returncode == 0
    wait_for(
        lambda: "Warm shutdown" in worker.log() or "soft shutdown" in worker.log().lower(),
        timeout_s=5,
    )
