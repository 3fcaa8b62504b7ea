"""Provider limit: two worker processes against a simulator that enforces R requests per
minute per model (answering 429 above it), with Chimera's fleet-wide limiter set to the same
R (``RATE_LIMIT_REQUESTS_PER_MINUTE``).  More conversations are sent than the limit lets
through; the simulator's call log gives the calls it admitted in the W seconds from the
first one, as requests/min ÷ the enforced limit (R x the two default models), and the 429s
it answered.  Targets: >= 0.95 and no 429.

Both limiters keep a sliding 60 s window (Chimera's is ``CHIMERA_LLM_WINDOW_MARGIN_S``
longer), so W spans two windows in the full run: the first fills at once, the second shows
whether the fleet refills it as soon as the provider would allow, without overrunning.
"""

from __future__ import annotations

import time
from collections import Counter

from bench.common import delete_keys
from bench.results import Outcome, Target, paired
from bench.stack import TURNS, Stack

NAME = "provider_limit"
RPM = 150  # per model
MODELS = 2  # the default participants: one Anthropic and one Gemini model


def run(stack: Stack, quick: bool) -> Outcome:
    window_s, conversations = (60, 60) if quick else (120, 150)
    stack.sim.latency(0.2)
    stack.sim.configure(limits={"rpm": RPM})
    stack.sim.reset()
    # Earlier scenarios' calls are still in Chimera's windows: start both limiters empty.
    delete_keys(stack.settings, stack.settings.redis_key("llm", "rl", "*"))
    env = {"RATE_LIMIT_REQUESTS_PER_MINUTE": str(RPM)}
    workers = stack.workers([stack.settings.celery_concurrency] * 2, **env)
    try:
        stack.submit(conversations)
        deadline = time.monotonic() + 60
        while not stack.sim.calls(0)["total"]:
            if time.monotonic() > deadline:
                raise RuntimeError("no LLM call reached the simulator")
            time.sleep(0.2)
        time.sleep(window_s + 1)
        log = stack.sim.calls(10_000)
    finally:
        for worker in workers:
            worker.kill()  # what is still queued or waiting is past the measurement
        stack.sim.configure(limits={"rpm": None})
        stack.sim.reset()
    first = min(float(c["ts"]) for c in log["calls"])
    admitted = [c for c in log["calls"] if c["status"] == 200 and c["ts"] < first + window_s]
    per_model = Counter(c["model"] for c in admitted)
    limited = sum(c["count"] for c in log["counts"] if c["status"] == 429)
    achieved = len(admitted) / (window_s / 60)
    details = {
        "rpm_per_model": RPM,
        "window_s": window_s,
        "conversations_sent": conversations,
        "turns_wanted": conversations * TURNS,
        "admitted_per_model": dict(per_model),
        "calls_total": log["total"],
    }
    return Outcome(
        [
            paired(
                NAME,
                "requests/min admitted",
                "req/min",
                [achieved],
                baseline=("enforced limit", "req/min", [RPM * MODELS]),
                target=Target(">=", 0.95),
                details=details,
            ),
            paired(
                NAME,
                "429s received",
                "",
                [float(limited)],
                baseline=("calls made", "", [float(log["total"])]),
                target=Target("<=", 0, on="figure"),
            ),
        ],
        1,
    )
