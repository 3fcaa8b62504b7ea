"""LLM client layer: what ``LLMClient.complete`` (limiter, breaker, validation, accounting)
adds to a bare ``anthropic`` SDK call of the same request, against the simulator at zero
latency.  Calls alternate between the two paths so that drift in the machine's load hits
both; each repetition is a block of such pairs.  Target: <= 1 ms median added."""

from __future__ import annotations

import statistics
import time

from bench.common import percentile
from bench.results import Outcome, Target, paired
from bench.stack import Stack

NAME = "llm_layer"


def run(stack: Stack, quick: bool) -> Outcome:
    import anthropic

    from chimera.llm.registry import build_client
    from chimera.llm.types import LLMRequest, Message
    from chimera.redis_client import make_redis
    from chimera.settings import load_settings

    reps, calls = (3, 60) if quick else (5, 200)
    stack.sim.latency(0)
    # A limit the run never reaches: the limiter still does all its work on every call.
    settings = load_settings(anthropic_api_key="bench", rate_limit_requests_per_minute=1_000_000)
    client = build_client(settings, redis_client=make_redis(settings), engine=stack.engine)
    bare = anthropic.Anthropic(api_key="bench", base_url=stack.sim.url, max_retries=0)
    request = LLMRequest(
        provider="anthropic",
        model="claude-sonnet-5-5",
        system="You are a concise debater.",
        messages=(Message(role="user", content="Should cities ban cars?"),),
        max_output_tokens=64,
    )

    def bare_call() -> None:
        bare.messages.create(
            model=request.model,
            max_tokens=request.max_output_tokens,
            system=request.system or "",
            messages=[{"role": "user", "content": request.messages[0].content}],
        )

    try:
        for _ in range(20):  # warm connections, scripts and caches on both paths
            bare_call()
            client.complete(request)
        blocks: list[tuple[list[float], list[float]]] = []
        for _ in range(reps):
            ours: list[float] = []
            sdk: list[float] = []
            for _ in range(calls):
                t0 = time.perf_counter()
                bare_call()
                t1 = time.perf_counter()
                client.complete(request)
                sdk.append((t1 - t0) * 1000)
                ours.append((time.perf_counter() - t1) * 1000)
            blocks.append((ours, sdk))
    finally:
        client.close()
        bare.close()

    sdk_median = [statistics.median(s) for _, s in blocks]
    added_median = [statistics.median(o) - statistics.median(s) for o, s in blocks]
    added_p99 = [percentile(o, 99) - percentile(s, 99) for o, s in blocks]
    details = {"calls_per_repetition": calls, "provider": "anthropic"}
    return Outcome(
        [
            paired(
                NAME,
                "added per call, median",
                "ms",
                added_median,
                baseline=("bare SDK call", "ms", sdk_median),
                target=Target("<=", 1.0, on="figure"),
                details=details,
            ),
            paired(
                NAME,
                "added per call, p99",
                "ms",
                added_p99,
                baseline=("bare SDK call, p99", "ms", [percentile(s, 99) for _, s in blocks]),
                target=None,
            ),
        ],
        reps,
    )
