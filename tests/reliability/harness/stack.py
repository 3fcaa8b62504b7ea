"""The stack under test: private Redis, a Postgres database, Kafka topics, and real processes.

Every process (workers, beat, the bridge) gets its settings from the environment,
as in production, with timings shortened so that redelivery, lease expiry and
the reconciler act within a test (the settings still check soft < hard <
visibility / 2).
"""

from __future__ import annotations

import contextlib
import json
import secrets
import time
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from sqlalchemy import Engine, select

from chimera import heartbeat
from chimera.db.tables import Event
from chimera.errors import ChimeraError
from chimera.kafka.clients import make_producer
from chimera.redis_client import make_redis
from chimera.settings import Settings, normalize_database_url
from chimera.stack.checks import run_canary
from tests.helpers import wait_for
from tests.reliability.harness.procs import (
    ManagedProcess,
    beat_argv,
    bridge_argv,
    process_env,
    worker_argv,
)
from tests.reliability.harness.servers import PrivateRedis

#: Short enough that a lost message, a dead lease holder or a stuck event is acted on
#: within a test; the settings refuse anything inconsistent.
FAST_TIMINGS: dict[str, Any] = {
    "visibility_timeout_s": 14,
    "unacked_restore_interval_s": 1,
    # A worker killed inside its restore sweep holds the sweep's lock until this expires.
    "unacked_mutex_expire_s": 5,
    "conversation_lock_ttl_s": 3.0,
    "task_time_limit_s": 7,
    "task_soft_time_limit_s": 6,
    "celery_concurrency": 4,
    "reconcile_after_s": 8.0,
    "reconcile_interval_s": 2.0,
    "reconcile_max_attempts": 6,
    "heartbeat_interval_s": 2.0,
    "worker_soft_shutdown_timeout_s": 0.0,
    "kafka_session_timeout_ms": 6_000,
    "kafka_heartbeat_interval_ms": 1_000,
    "bridge_retry_base_s": 0.2,
    "bridge_retry_cap_s": 2.0,
}

DONE = ("done", "dead_lettered")


class Stack:
    """One test's Chimera deployment, built around servers the test owns."""

    def __init__(
        self,
        base: Settings,
        *,
        workdir: Path,
        redis: PrivateRedis,
        engine: Engine,
        database_url: str,
        **overrides: Any,
    ) -> None:
        token = secrets.token_hex(3)
        self.workdir = workdir
        self.redis = redis
        self.engine = engine
        update = FAST_TIMINGS | {
            "redis_host": "127.0.0.1",
            "redis_port": redis.port,
            "redis_url": None,
            "redis_password": None,
            "redis_key_prefix": f"rel-{token}:",
            "celery_queue": f"rel-{token}",
            "kafka_consumer_group_id": f"rel-{token}",
            "database_url": SecretStr(normalize_database_url(database_url)),
            "state_dir": workdir / "state",
        }
        self.settings: Settings = base.model_copy(update=update | overrides)
        self.processes: list[ManagedProcess] = []
        self._produced: list[str] = []

    # --- processes ---------------------------------------------------------------------------

    def _spawn(self, name: str, argv: list[str], env: Mapping[str, str]) -> ManagedProcess:
        n = sum(p.name.startswith(name) for p in self.processes)
        proc = ManagedProcess(
            f"{name}{n}", argv, process_env(self.settings, env), self.workdir / f"{name}{n}.log"
        )
        self.processes.append(proc)
        return proc

    def start_worker(self, *, wait: bool = True, **env: str) -> ManagedProcess:
        """A ``celery worker`` process on the stack's queue, waited until it runs a canary."""
        hostname = f"w{len(self.processes)}-{secrets.token_hex(2)}@%h"
        worker = self._spawn("worker", worker_argv(hostname), env)
        if wait:
            self.wait_worker(worker)
        return worker

    def wait_worker(self, worker: ManagedProcess, timeout_s: float = 90) -> None:
        def ready() -> bool:
            worker.assert_alive()
            try:
                run_canary(self.settings, timeout_s=3.0)
                return True
            except ChimeraError:
                return False

        wait_for(ready, timeout_s=timeout_s, interval_s=0.2, what=f"{worker.name} to run a canary")

    def start_beat(self) -> ManagedProcess:
        """Beat: canary, topic drain and, above all, the reconciler every couple of seconds."""
        (self.workdir / "state").mkdir(parents=True, exist_ok=True)
        return self._spawn("beat", beat_argv(self.workdir / "state" / "beat-schedule"), {})

    def start_bridge(self, settings: Settings | None = None) -> ManagedProcess:
        """``python -m bridges``, waited until its heartbeat shows assigned partitions."""
        env = process_env(settings) if settings is not None else {}
        bridge = self._spawn("bridge", bridge_argv(), env)
        client = make_redis(self.settings)

        def joined() -> bool:
            bridge.assert_alive()
            with contextlib.suppress(ChimeraError):
                for beat in heartbeat.read(client, self.settings, "bridge"):
                    if beat.info.get("pid") == bridge.pid and beat.info.get("assigned"):
                        return True
            return False

        try:
            wait_for(joined, timeout_s=90, interval_s=0.2, what="the bridge to join its group")
        finally:
            client.close()
        return bridge

    def start_all(self, *, workers: int = 1, **worker_env: str) -> None:
        """Workers, beat and the bridge, started together and waited ready."""
        started = [self.start_worker(wait=False, **worker_env) for _ in range(workers)]
        self.start_beat()
        self.start_bridge()
        for worker in started:
            self.wait_worker(worker)

    def rss(self) -> dict[str, float]:
        """A memory sample of every live process (the baseline of a flat-memory check)."""
        return {p.name: p.rss_mib() for p in self.processes if p.alive() and not p.killed}

    def close(self) -> None:
        for proc in reversed(self.processes):
            proc.kill()

    # --- input --------------------------------------------------------------------------------

    def produce(self, topic: str, events: Iterable[dict[str, Any]]) -> list[str]:
        producer = make_producer(self.settings)
        ids = []
        try:
            futures = []
            for event in events:
                ids.append(event["event_id"])
                key = str(event.get("context_id") or event["event_id"]).encode()
                value = json.dumps(event).encode()
                futures.append(producer.send(topic, key=key, value=value))
            for future in futures:
                future.get(timeout=30)
        finally:
            producer.close()
        self._produced += ids
        return ids

    def produce_conversations(self, n: int, **fields: Any) -> list[str]:
        events = [
            {
                "event_id": f"conv-evt-{uuid.uuid4().hex[:12]}",
                "topic": f"Should cities ban cars? ({i})",
                "min_turns": 3,
                "max_turns": 3,
            }
            | fields
            for i in range(n)
        ]
        return self.produce(self.settings.topic_conversation_new, events)

    def produce_analyses(self, n: int, **fields: Any) -> list[str]:
        events = [
            {
                "event_id": f"ana-evt-{uuid.uuid4().hex[:12]}",
                "context_id": f"doc-{uuid.uuid4().hex[:8]}",
                "segments": [
                    {"speaker": "Ana", "text": "Cars make cities loud. Bans always work."},
                    {"speaker": "Ben", "text": "A ban would hurt shops; Ana only says so."},
                ],
            }
            | fields
            for _ in range(n)
        ]
        return self.produce(self.settings.topic_analysis_tasks, events)

    def produce_mixed_and_wait_in_flight(self, sim_calls: Any) -> list[str]:
        """The fault tests' common load: 6 four-turn conversations and 3 analyses, returned
        once 8 LLM calls have been paid (work is in flight when the fault comes)."""
        ids = self.produce_conversations(6, min_turns=4, max_turns=4) + self.produce_analyses(3)
        wait_for(
            lambda: sim_calls.calls().count(status=200) >= 8,
            timeout_s=90,
            what="work in flight",
        )
        return ids

    @property
    def produced(self) -> list[str]:
        return list(self._produced)

    # --- progress ------------------------------------------------------------------------------

    def statuses(self, event_ids: Iterable[str] | None = None) -> dict[str, str]:
        ids = list(event_ids if event_ids is not None else self._produced)
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(Event.event_id, Event.status).where(Event.event_id.in_(ids))
            ).all()
        return {r.event_id: r.status for r in rows}

    def settled(self, event_ids: Iterable[str] | None = None) -> int:
        """How many of the events are done or dead-lettered."""
        return sum(s in DONE for s in self.statuses(event_ids).values())

    def wait_settled(self, event_ids: list[str] | None = None, timeout_s: float = 240) -> float:
        """Wait until every event is done or dead-lettered (checking the processes live);
        returns the seconds it took."""
        ids = event_ids if event_ids is not None else self.produced
        started = time.monotonic()

        def all_settled() -> bool:
            for proc in self.processes:
                if not (proc.paused or proc.killed):
                    proc.assert_alive()
            return self.settled(ids) == len(ids)

        wait_for(all_settled, timeout_s=timeout_s, interval_s=0.5, what="every event to settle")
        return time.monotonic() - started
