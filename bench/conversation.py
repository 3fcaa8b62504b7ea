"""Conversation throughput and per-turn orchestration overhead.

Two figures, each against a baseline from the same run (PERF-FACTS: the machine is shared):

1. **turn overhead**: conversations of 6 turns, one at a time, simulator latency 0:
   time per turn ÷ time per link of a bare Celery chain of 6 no-op tasks on the same
   worker and broker.  Target <= 2x (issue 8 drives it there).
2. **LLM-bound throughput**: N conversations x 6 turns at 1 s simulated latency, all
   submitted at once: achieved turns/s ÷ (worker concurrency / 1 s).  Target >= 0.9.

Runs its own simulator, Kafka broker, worker process, database and Redis key prefix.

    PYTHONPATH=. .venv/bin/python bench/conversation.py [--conversations 200] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from bench.common import PROJECT_ROOT, free_port, scratch_environment, simulator, write_result

TURNS = 6


def start_worker(env: dict[str, str], concurrency: int, log: Path) -> subprocess.Popen[bytes]:
    argv = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "tasks.worker",
        "worker",
        "-I",
        "bench.pool_tasks",
        "--pool",
        "threads",
        "--concurrency",
        str(concurrency),
        "--without-mingle",
        "--without-gossip",
        "--loglevel",
        "WARNING",
    ]
    with open(log, "wb") as out:
        return subprocess.Popen(
            argv,
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(40)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--conversations", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--sequential", type=int, default=15, help="conversations for the overhead figure"
    )
    args = parser.parse_args()

    with scratch_environment() as env, simulator() as sim_url:
        kafka_port = free_port()
        os.environ.update(
            {
                "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{kafka_port}",
                "ANTHROPIC_BASE_URL": sim_url,
                "GOOGLE_GEMINI_BASE_URL": sim_url,
                "OPENAI_BASE_URL": f"{sim_url}/v1",
                "RATE_LIMIT_REQUESTS_PER_MINUTE": "1000000",
                "CHIMERA_CELERY_CONCURRENCY": str(args.concurrency),
            }
        )
        from celery import chain

        from chimera.codec import payload_hash
        from chimera.db import admin
        from chimera.db.engine import make_engine
        from chimera.ids import conversation_id
        from chimera.inbox import Inbox
        from chimera.kafka import broker
        from chimera.kafka.topics import ensure_topics
        from chimera.settings import load_settings
        from sqlalchemy import text
        from tasks.app import create_app
        from tasks.handoff import send_handoff

        settings = load_settings()
        admin.upgrade(settings)
        logs = Path(os.environ.get("TMPDIR", "/tmp")) / f"chimera-bench-{uuid.uuid4().hex[:6]}"
        logs.mkdir(parents=True)
        kafka = broker.start_broker("127.0.0.1", kafka_port, logs / "kafka.log")
        broker.wait_until_ready(settings, 30, kafka)
        ensure_topics(settings)
        worker = start_worker(os.environ.copy(), args.concurrency, logs / "worker.log")
        app = create_app()
        engine = make_engine(settings)
        inbox = Inbox(engine)
        try:
            _wait_worker(app)

            def submit(n: int) -> list[str]:
                cids = []
                for _ in range(n):
                    event = {
                        "event_id": f"bench-{uuid.uuid4().hex}",
                        "topic": "Should cities ban cars?",
                        "min_turns": TURNS,
                        "max_turns": TURNS,
                    }
                    inbox.accept(
                        event_id=event["event_id"],
                        kind="conversation",
                        payload=event,
                        payload_hash=payload_hash(event),
                    )
                    send_handoff(app, "conversation", event["event_id"])
                    cids.append(conversation_id(event["event_id"]))
                return cids

            def wait_done(cids: list[str], timeout_s: float) -> float:
                deadline = time.monotonic() + timeout_s
                while time.monotonic() < deadline:
                    with engine.connect() as conn:
                        done = conn.execute(
                            text(
                                "SELECT count(*) FROM conversations WHERE id = ANY(:ids) AND status IN ('completed','failed')"
                            ),
                            {"ids": cids},
                        ).scalar_one()
                    if done == len(cids):
                        return time.monotonic()
                    time.sleep(0.02)
                raise RuntimeError(f"only {done}/{len(cids)} conversations finished")

            # 1. per-turn overhead, latency 0, one conversation at a time
            _sim(sim_url, {"ttft_ms": 0, "ms_per_token": 0})
            per_turn = []
            for _ in range(args.sequential):
                t0 = time.monotonic()
                finished = wait_done(submit(1), 60)
                per_turn.append((finished - t0) / TURNS)
            noop = app.signature("bench.noop", immutable=True)
            per_link = []
            for _ in range(args.sequential):
                t0 = time.monotonic()
                chain(*[noop.clone() for _ in range(TURNS)]).apply_async().get(timeout=30)
                per_link.append((time.monotonic() - t0) / TURNS)
            overhead = {
                "turn_ms_median": statistics.median(per_turn) * 1000,
                "bare_chain_link_ms_median": statistics.median(per_link) * 1000,
            }
            overhead["ratio"] = overhead["turn_ms_median"] / overhead["bare_chain_link_ms_median"]
            overhead["target"] = 2.0
            overhead["pass"] = overhead["ratio"] <= 2.0

            # 2. LLM-bound throughput at 1 s per call
            _sim(sim_url, {"ttft_ms": 1000, "ms_per_token": 0})
            t0 = time.monotonic()
            cids = submit(args.conversations)
            finished = wait_done(cids, 60 + args.conversations * TURNS / args.concurrency * 3)
            elapsed = finished - t0
            with engine.connect() as conn:
                turns = conn.execute(
                    text(
                        "SELECT count(*) FROM conversation_turns WHERE conversation_id = ANY(:ids)"
                    ),
                    {"ids": cids},
                ).scalar_one()
            achieved = turns / elapsed
            ideal = args.concurrency / 1.0
            throughput = {
                "conversations": args.conversations,
                "turns": turns,
                "elapsed_s": elapsed,
                "turns_per_s": achieved,
                "ideal_turns_per_s": ideal,
                "efficiency": achieved / ideal,
                "target": 0.9,
                "pass": achieved / ideal >= 0.9,
            }
        finally:
            stop(worker)
            kafka.terminate()
            kafka.wait(10)
            engine.dispose()

    write_result("conversation_turn_overhead", overhead)
    write_result("conversation_throughput", throughput)
    print(
        f"turn overhead: {overhead['turn_ms_median']:.1f} ms per turn vs {overhead['bare_chain_link_ms_median']:.1f} ms "
        f"per bare chain link: {overhead['ratio']:.1f}x (target <= 2x)"
    )
    print(
        f"throughput: {throughput['turns_per_s']:.1f} turns/s of {ideal:.0f} ideal = "
        f"{throughput['efficiency']:.2f} (target >= 0.9), {throughput['turns']} turns in {throughput['elapsed_s']:.1f}s"
    )


def _sim(url: str, config: dict[str, Any]) -> None:
    import json
    import urllib.request

    request = urllib.request.Request(
        f"{url}/_sim/config",
        data=json.dumps(config).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5):  # noqa: S310 (local)
        pass


def _wait_worker(app: Any) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            app.send_task("bench.noop").get(timeout=2)
            return
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(0.2)
    raise RuntimeError("the bench worker did not start")


if __name__ == "__main__":
    main()
