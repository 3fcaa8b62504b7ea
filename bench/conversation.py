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
import tempfile
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


class Harness:
    """The bench's own stack: database, broker, one worker, the Celery client."""

    def __init__(self, concurrency: int) -> None:
        from chimera.db import admin
        from chimera.db.engine import make_engine
        from chimera.inbox import Inbox
        from chimera.kafka import broker
        from chimera.kafka.topics import ensure_topics
        from chimera.settings import load_settings
        from tasks.app import create_app

        settings = load_settings()
        admin.upgrade(settings)
        logs = Path(tempfile.mkdtemp(prefix="chimera-bench-"))
        port = int(settings.kafka_bootstrap_servers.rsplit(":", 1)[1])
        self.kafka = broker.start_broker("127.0.0.1", port, logs / "kafka.log")
        broker.wait_until_ready(settings, 30, self.kafka)
        ensure_topics(settings)
        self.worker = start_worker(os.environ.copy(), concurrency, logs / "worker.log")
        self.app = create_app()
        self.engine = make_engine(settings)
        self.inbox = Inbox(self.engine)
        _wait_worker(self.app)

    def submit(self, n: int) -> list[str]:
        """``n`` conversations of TURNS turns, entered as the bridge would."""
        from chimera.codec import payload_hash
        from chimera.ids import conversation_id
        from tasks.handoff import send_handoff

        cids = []
        for _ in range(n):
            event = {
                "event_id": f"bench-{uuid.uuid4().hex}",
                "topic": "Should cities ban cars?",
                "min_turns": TURNS,
                "max_turns": TURNS,
            }
            self.inbox.accept(
                event_id=event["event_id"],
                kind="conversation",
                payload=event,
                payload_hash=payload_hash(event),
            )
            send_handoff(self.app, "conversation", event["event_id"])
            cids.append(conversation_id(event["event_id"]))
        return cids

    def wait_done(self, cids: list[str], timeout_s: float) -> float:
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
            time.sleep(0.02)
        raise RuntimeError(f"only {done}/{len(cids)} conversations finished")

    def turns(self, cids: list[str]) -> int:
        from sqlalchemy import text

        query = text("SELECT count(*) FROM conversation_turns WHERE conversation_id = ANY(:ids)")
        with self.engine.connect() as conn:
            return int(conn.execute(query, {"ids": cids}).scalar_one())

    def close(self) -> None:
        stop(self.worker)
        self.kafka.terminate()
        self.kafka.wait(10)
        self.engine.dispose()


def measure_overhead(h: Harness, sim_url: str, runs: int) -> dict[str, Any]:
    from celery import chain

    _sim(sim_url, {"ttft_ms": 0, "ms_per_token": 0})
    per_turn = []
    for _ in range(runs):
        t0 = time.monotonic()
        per_turn.append((h.wait_done(h.submit(1), 60) - t0) / TURNS)
    noop = h.app.signature("bench.noop", immutable=True)
    per_link = []
    for _ in range(runs):
        t0 = time.monotonic()
        chain(*[noop.clone() for _ in range(TURNS)]).apply_async().get(timeout=30)
        per_link.append((time.monotonic() - t0) / TURNS)
    turn_ms = statistics.median(per_turn) * 1000
    link_ms = statistics.median(per_link) * 1000
    sdk_ms = bare_sdk_call_ms(sim_url, runs * TURNS)
    return {
        "turn_ms_median": turn_ms,
        "turn_ms_spread": [min(per_turn) * 1000, max(per_turn) * 1000],
        "bare_chain_link_ms_median": link_ms,
        "bare_sdk_call_ms_median": sdk_ms,
        "ratio": turn_ms / link_ms,
        # What orchestration adds on top of the LLM call itself, per chain link.
        "ratio_without_llm_call": (turn_ms - sdk_ms) / link_ms,
        "target": 2.0,
        "pass": turn_ms / link_ms <= 2.0,
    }


def bare_sdk_call_ms(sim_url: str, calls: int) -> float:
    """Median of bare SDK calls to the simulator, alternating the two providers the
    default participants use, with a turn-sized request."""
    import anthropic
    from google import genai
    from google.genai import types

    claude = anthropic.Anthropic(api_key="bench", base_url=sim_url, max_retries=0)
    gemini = genai.Client(api_key="bench", http_options=types.HttpOptions(base_url=sim_url))
    prompt = "Should cities ban cars? Give your view in a few sentences."
    config = types.GenerateContentConfig(max_output_tokens=400, system_instruction="Debate.")

    def call(i: int) -> None:
        if i % 2:
            gemini.models.generate_content(model="gemini-3.5-flash", contents=prompt, config=config)
        else:
            claude.messages.create(
                model="claude-sonnet-5-5",
                max_tokens=400,
                system="Debate.",
                messages=[{"role": "user", "content": prompt}],
            )

    for i in range(4):
        call(i)
    samples = []
    for i in range(calls):
        t0 = time.perf_counter()
        call(i)
        samples.append(time.perf_counter() - t0)
    claude.close()
    return statistics.median(samples) * 1000


def measure_throughput(
    h: Harness, sim_url: str, conversations: int, concurrency: int
) -> dict[str, Any]:
    _sim(sim_url, {"ttft_ms": 1000, "ms_per_token": 0})
    t0 = time.monotonic()
    cids = h.submit(conversations)
    elapsed = h.wait_done(cids, 60 + conversations * TURNS / concurrency * 3) - t0
    turns = h.turns(cids)
    efficiency = turns / elapsed / concurrency
    return {
        "conversations": conversations,
        "turns": turns,
        "elapsed_s": elapsed,
        "turns_per_s": turns / elapsed,
        "ideal_turns_per_s": float(concurrency),
        "efficiency": efficiency,
        "target": 0.9,
        "pass": efficiency >= 0.9,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--conversations", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--sequential", type=int, default=15, help="conversations for the overhead")
    args = parser.parse_args()

    with scratch_environment(), simulator() as sim_url:
        os.environ.update(
            {
                "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
                "ANTHROPIC_BASE_URL": sim_url,
                "GOOGLE_GEMINI_BASE_URL": sim_url,
                "OPENAI_BASE_URL": f"{sim_url}/v1",
                "RATE_LIMIT_REQUESTS_PER_MINUTE": "1000000",
                "CHIMERA_CELERY_CONCURRENCY": str(args.concurrency),
            }
        )
        harness = Harness(args.concurrency)
        try:
            overhead = measure_overhead(harness, sim_url, args.sequential)
            throughput = measure_throughput(harness, sim_url, args.conversations, args.concurrency)
        finally:
            harness.close()

    write_result("conversation_turn_overhead", overhead)
    write_result("conversation_throughput", throughput)
    print(
        f"turn overhead: {overhead['turn_ms_median']:.1f} ms per turn vs "
        f"{overhead['bare_chain_link_ms_median']:.1f} ms per bare chain link: "
        f"{overhead['ratio']:.1f}x (target <= 2x); without the LLM call itself "
        f"({overhead['bare_sdk_call_ms_median']:.1f} ms bare): "
        f"{overhead['ratio_without_llm_call']:.1f}x"
    )
    print(
        f"throughput: {throughput['turns_per_s']:.1f} of {throughput['ideal_turns_per_s']:.0f} "
        f"turns/s = {throughput['efficiency']:.2f} (target >= 0.9), {throughput['turns']} turns "
        f"in {throughput['elapsed_s']:.1f}s"
    )


def _sim(url: str, config: dict[str, Any]) -> None:
    import json
    import urllib.request

    request = urllib.request.Request(  # noqa: S310 - our own simulator
        f"{url}/_sim/config",
        data=json.dumps(config).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5):  # noqa: S310 - our own simulator
        pass


def _wait_worker(app: Any) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            app.send_task("bench.noop").get(timeout=2)
            return
        except Exception:
            time.sleep(0.2)
    raise RuntimeError("the bench worker did not start")


if __name__ == "__main__":
    main()
