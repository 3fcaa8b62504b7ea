"""The bench's own stack, shared by every scenario of a run: the scratch database, a Kafka
broker on a free port, the simulator, the Celery client, and workers and bridges started on
demand.  Nothing here touches the machine's running stack; everything is removed at the end."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from bench.common import MB, Sim, free_port, start_process, stop, wait_until

#: Turns per bench conversation (min_turns = max_turns, so it never ends early).
TURNS = 6


class Worker:
    """One ``celery -A tasks.worker worker`` process (threads pool) with the bench tasks."""

    def __init__(self, stack: Stack, concurrency: int, extra_env: dict[str, str]) -> None:
        self.hostname = f"bench-{secrets.token_hex(3)}@bench"
        argv = [
            sys.executable, "-m", "celery", "-A", "tasks.worker", "worker",
            "-I", "bench.pool_tasks", "-n", self.hostname,
            "--pool", "threads", "--concurrency", str(concurrency),
            "--without-mingle", "--without-gossip", "--loglevel", "WARNING",
        ]  # fmt: skip
        env = stack.env | {"CHIMERA_CELERY_CONCURRENCY": str(concurrency)} | extra_env
        self.proc = start_process(argv, env, stack.logs / f"worker-{self.hostname}.log")
        self._app = stack.app

    def wait_ready(self) -> None:
        """Block until the worker answers a ping addressed to it alone."""
        wait_until("a bench worker", self._answers, self.proc, 60)

    def _answers(self) -> bool:
        return bool(self._app.control.ping(destination=[self.hostname], timeout=1.0))

    @property
    def pid(self) -> int:
        return self.proc.pid

    def rss_mb(self) -> float:
        import psutil

        return float(psutil.Process(self.pid).memory_info().rss) / MB

    def pause(self, queue: str) -> None:
        """Stop consuming ``queue`` (the other workers take the work)."""
        self._app.control.cancel_consumer(queue, destination=[self.hostname], reply=True)

    def resume(self, queue: str) -> None:
        """Consume ``queue`` again."""
        self._app.control.add_consumer(queue, destination=[self.hostname], reply=True)

    def tasks_done(self, name: str) -> int:
        """How many ``name`` tasks this worker has run (its ``stats`` control reply)."""
        stats = self._app.control.inspect([self.hostname], timeout=2.0).stats() or {}
        return int(stats.get(self.hostname, {}).get("total", {}).get(name, 0))

    def close(self) -> None:
        """Warm shutdown (running tasks finish), SIGKILL after 20 s."""
        stop(self.proc, 20)

    def kill(self) -> None:
        """SIGKILL: for a worker whose unfinished work is of no interest (see Stack.purge)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


class Stack:
    """Database, broker, simulator and clients; workers and bridges are started by scenarios."""

    def __init__(self, logs: Path, exits: contextlib.ExitStack) -> None:
        from chimera.db import admin
        from chimera.db.engine import make_engine
        from chimera.events.inbox import Inbox
        from chimera.kafka import broker
        from chimera.kafka.topics import ensure_topics
        from chimera.settings import load_settings

        self.logs = logs
        self.sim = Sim(logs / "sim.log")
        exits.callback(self.sim.close)
        os.environ.update(
            {
                "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
                "ANTHROPIC_BASE_URL": self.sim.url,
                "GOOGLE_GEMINI_BASE_URL": self.sim.url,
                "OPENAI_BASE_URL": f"{self.sim.url}/v1",
                "RATE_LIMIT_REQUESTS_PER_MINUTE": "1000000",  # scenarios that test it lower it
                "CHIMERA_LOG_LEVEL": "WARNING",
                "CHIMERA_WORKER_SOFT_SHUTDOWN_TIMEOUT_S": "0",
            }
        )
        self.env = os.environ.copy()
        self.settings = settings = load_settings()
        admin.upgrade(settings)
        port = int(settings.kafka_bootstrap_servers.rsplit(":", 1)[1])
        kafka = broker.start_broker("127.0.0.1", port, logs / "kafka.log")
        exits.callback(_terminate, kafka)
        self.kafka_pid = kafka.pid
        broker.wait_until_ready(settings, 30, kafka)
        ensure_topics(settings)
        from tasks.app import create_app

        self.app = create_app()
        exits.callback(self.app.close)
        self.engine = make_engine(settings)
        exits.callback(self.engine.dispose)
        self.inbox = Inbox(self.engine)
        self._producer: Any = None
        exits.callback(self._close_producer)

    # --- processes ----------------------------------------------------------------------

    def worker(self, concurrency: int, **extra_env: str) -> Worker:
        """A worker with ``concurrency`` threads, once it answers a ping."""
        return self.workers([concurrency], **extra_env)[0]

    def workers(self, concurrencies: list[int], **extra_env: str) -> list[Worker]:
        """One worker per thread count given, started together (start-up is mostly imports,
        so this takes about as long as one)."""
        started = [Worker(self, c, extra_env) for c in concurrencies]
        try:
            for worker in started:
                worker.wait_ready()
        except BaseException:
            for worker in started:
                worker.kill()
            raise
        return started

    def bridge(self, **extra_env: str) -> subprocess.Popen[bytes]:
        """``python -m bridges`` in the bench's environment; ready once it has joined its group
        (the caller sees that when its first event lands)."""
        log = self.logs / f"bridge-{secrets.token_hex(3)}.log"
        return start_process([sys.executable, "-m", "bridges"], self.env | extra_env, log)

    def purge(self) -> None:
        """Drop what a scenario left in the Celery queue (call with no worker running)."""
        import redis

        self.app.control.purge()
        client = redis.Redis.from_url(self.settings.redis_url_for(self.settings.redis_broker_db))
        prefix = self.settings.redis_key_prefix
        client.delete(f"{prefix}unacked", f"{prefix}unacked_index")
        client.close()

    # --- conversations ------------------------------------------------------------------

    @property
    def producer(self) -> Any:
        from chimera.kafka.clients import make_producer

        if self._producer is None:
            self._producer = make_producer(self.settings)
        return self._producer

    def _close_producer(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=10)

    @staticmethod
    def conversation_event() -> dict[str, Any]:
        return {
            "event_id": f"bench-{uuid.uuid4().hex}",
            "topic": "Should cities ban cars?",
            "min_turns": TURNS,
            "max_turns": TURNS,
        }

    def submit(self, n: int) -> list[str]:
        """``n`` conversations entered as the bridge would (inbox row, hand-off task);
        returns their conversation ids."""
        from chimera.codec import payload_hash
        from chimera.events.ids import conversation_id
        from tasks.handoff import send_handoff

        cids = []
        for _ in range(n):
            event = self.conversation_event()
            self.inbox.accept(
                event_id=event["event_id"],
                kind="conversation",
                payload=event,
                payload_hash=payload_hash(event),
            )
            send_handoff(self.app, "conversation", event["event_id"])
            cids.append(conversation_id(event["event_id"]))
        return cids

    def produce(self, n: int) -> None:
        """``n`` conversation requests published to ``conversation.new``."""
        topic = self.settings.topic_conversation_new
        futures = []
        for _ in range(n):
            event = self.conversation_event()
            key = event["event_id"].encode()
            futures.append(self.producer.send(topic, key=key, value=json.dumps(event).encode()))
        self.producer.flush(60)
        for future in futures:
            future.get(10)

    def wait_done(self, cids: list[str], timeout_s: float, poll_s: float = 0.02) -> float:
        """Wait until every conversation is completed or failed; the monotonic time it was seen."""
        from sqlalchemy import text

        query = text(
            "SELECT count(*) FROM conversations WHERE id = ANY(:ids) "
            "AND status IN ('completed', 'failed')"
        )
        deadline = time.monotonic() + timeout_s
        done = 0
        while time.monotonic() < deadline:
            with self.engine.connect() as conn:
                done = conn.execute(query, {"ids": cids}).scalar_one()
            if done == len(cids):
                return time.monotonic()
            time.sleep(poll_s)
        raise RuntimeError(f"only {done}/{len(cids)} conversations finished in {timeout_s:.0f}s")

    def turns(self, cids: list[str]) -> int:
        """Stored turns of these conversations."""
        from sqlalchemy import text

        query = text("SELECT count(*) FROM conversation_turns WHERE conversation_id = ANY(:ids)")
        with self.engine.connect() as conn:
            return int(conn.execute(query, {"ids": cids}).scalar_one())

    def run_conversations(self, n: int, timeout_s: float, poll_s: float = 0.02) -> float:
        """Submit ``n`` conversations at once and wait for them; the seconds it took (all of
        them must complete with every turn)."""
        t0 = time.monotonic()
        cids = self.submit(n)
        elapsed = self.wait_done(cids, timeout_s, poll_s) - t0
        turns = self.turns(cids)
        if turns != n * TURNS:
            raise RuntimeError(f"{turns} of {n * TURNS} turns were stored")
        return elapsed


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
