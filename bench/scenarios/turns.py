"""Turn overhead and CPU cost of a turn, on one worker (threads pool, the default
concurrency) at zero simulated latency.

* **turn overhead**: one 6-turn conversation at a time, time per turn ÷ time per link of a
  bare chain of 6 ``bench.noop`` on the same worker and broker, measured alternately.
  Target <= 2x.  The bare SDK call to the simulator is recorded beside it: at zero latency
  it is the part of a turn that is the LLM call itself.
* **CPU cost**: a batch of conversations sent at once, CPU-seconds per turn across the
  processes involved (``bench.cpu``) ÷ CPU-seconds per task of the same number of bare
  6-chains sent at once.  Target <= 3x.
"""

from __future__ import annotations

import statistics
import time

from bench import baselines
from bench.cpu import CpuMeter
from bench.results import Outcome, Target, paired
from bench.stack import TURNS, Stack

NAME = "turns"


def run(stack: Stack, quick: bool) -> Outcome:
    reps, cpu_reps, batch = (5, 2, 10) if quick else (15, 3, 20)
    stack.sim.latency(0)
    worker = stack.worker(stack.settings.celery_concurrency)
    try:
        stack.run_conversations(2, 60)  # warm-up: connections, scripts, imports
        baselines.chain_link(stack.app, TURNS)
        per_turn, per_link = [], []
        for _ in range(reps):
            per_turn.append(stack.run_conversations(1, 60, poll_s=0.005) / TURNS * 1000)
            per_link.append(baselines.chain_link(stack.app, TURNS) * 1000)
        sdk = baselines.BareSdk(stack.sim.url)
        sdk_ms = [sdk.call() * 1000 for _ in range(reps * TURNS)]
        sdk.close()

        meter = CpuMeter(
            stack.settings, stack.engine, {"worker": worker.pid, "kafka": stack.kafka_pid}
        )
        turn_cpu, task_cpu, breakdown = [], [], []
        for _ in range(cpu_reps):
            before = meter.snapshot()
            stack.run_conversations(batch, 120, poll_s=0.25)
            time.sleep(0.3)  # batched accounting and reconciles land
            used = CpuMeter.delta(before, meter.snapshot())
            turn_cpu.append(sum(used.values()) / (batch * TURNS) * 1000)
            breakdown.append({k: round(v / (batch * TURNS) * 1000, 3) for k, v in used.items()})
            before = meter.snapshot()
            baselines.chains_at_once(stack.app, batch, TURNS)
            time.sleep(0.3)
            used = CpuMeter.delta(before, meter.snapshot())
            task_cpu.append(sum(used.values()) / (batch * TURNS) * 1000)
        meter.close()
    finally:
        worker.close()
    sdk_median = statistics.median(sdk_ms)
    overhead = {
        "bare_sdk_call_ms": sdk_median,
        "turn_minus_sdk_call_over_link": (statistics.median(per_turn) - sdk_median)
        / statistics.median(per_link),
    }
    cpu_details = {"conversations_per_batch": batch, "cpu_ms_per_turn_by_process": breakdown}
    return Outcome(
        [
            paired(
                NAME,
                "time per turn",
                "ms",
                per_turn,
                baseline=("bare 6-chain, per link", "ms", per_link),
                target=Target("<=", 2.0),
                details=overhead,
            ),
            paired(
                NAME,
                "CPU per turn",
                "ms",
                turn_cpu,
                baseline=("bare chained task CPU", "ms", task_cpu),
                target=Target("<=", 3.0),
                details=cpu_details,
            ),
        ],
        reps,
    )
